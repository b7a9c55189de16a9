"""A job's work in a :class:`Store`: the decoded samples, one checkpoint per finished chunk, the
merged notes, the score and the artifacts, all under the job's *work key*.

The key is a hash of the input's bytes and of everything that decides the notes (the model, its
version and window settings, the device, the chunk length and margins, the part of the input
used), so any worker that reaches the store can run any stage of the job, and re-running the same
job finds what an interrupted run finished. Every object is written whole or not at all (see
:meth:`Store.writer`), so a run killed at any moment leaves only complete checkpoints behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kimiwonosete.errors import KimiError, OutputError
from kimiwonosete.files import cache_home
from kimiwonosete.notes import Performance
from kimiwonosete.pipeline.store import Store
from kimiwonosete.score.model import Score
from kimiwonosete.transcription.chunks import Chunk

HASH_BLOCK = 1 << 20
#: Bump when the layout of a job's objects changes what they mean.
LAYOUT = 2
SAMPLE_BYTES = 4  # mono float32, little-endian


def default_root() -> Path:
    return cache_home() / "work"


def digest(**settings: object) -> str:
    """A short hex digest of ``settings`` (JSON-ready values).

    >>> digest(title="Minuet") == digest(title="Minuet") != digest(title="Menuet")
    True
    """
    return hashlib.sha256(json.dumps({"layout": LAYOUT, **settings}, sort_keys=True).encode()).hexdigest()[:24]


def work_key(source: Path, **settings: object) -> str:
    """The work key of ``source``'s bytes transcribed with ``settings``."""
    content = hashlib.sha256()
    with open(source, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            content.update(block)
    return digest(source=content.hexdigest(), **settings)


class Work:
    """One job's objects in ``store``, below ``key``: ``samples.f32``, ``chunks/NNNNN.json``,
    ``performance.json``, and per score (a title, a link's credits: see :func:`digest`)
    ``scores/<id>/score.json`` and its artifacts.

    >>> import tempfile
    >>> from kimiwonosete.notes import Note, Pedal
    >>> work = Work(Store(tempfile.mkdtemp()), "k")
    >>> chunk = Chunk(0, 0, 10, 0, 10)
    >>> work.save_chunk(chunk, Performance([Note(0.5, 1.0, 60, 90)], [Pedal(0.0, 2.0)], 10.0))
    >>> work.load_chunk(chunk).notes, work.finished()
    ([Note(onset=0.5, offset=1.0, pitch=60, velocity=90)], 1)
    """

    def __init__(self, store: Store, key: str) -> None:
        self.store = store
        self.key = key
        self.samples = f"{key}/samples.f32"

    def _chunk(self, chunk: Chunk) -> str:
        return f"{self.key}/chunks/{chunk.index:05d}.json"

    def read_samples(self, start: int, end: int) -> np.ndarray:
        """Samples ``start`` to ``end`` (only those are read: a long recording never sits in memory),
        as a writable array (torch warns on every read-only one it is given)."""
        data = self.store.read_range(self.samples, SAMPLE_BYTES * start, SAMPLE_BYTES * end)
        return np.frombuffer(bytearray(data), dtype="<f4")

    def sample_count(self) -> int | None:
        size = self.store.size(self.samples)
        return None if size is None else size // SAMPLE_BYTES

    def save_chunk(self, chunk: Chunk, performance: Performance) -> None:
        data = {"chunk": [chunk.start, chunk.end, chunk.core_start, chunk.core_end], "notes": performance.to_dict()}
        self.store.put(self._chunk(chunk), json.dumps(data).encode())

    def load_chunk(self, chunk: Chunk) -> Performance | None:
        """The checkpoint of ``chunk``, or ``None`` if there is none for exactly this chunk."""
        try:
            data = json.loads(self.store.get(self._chunk(chunk)) or b"null")
            if data is None or data.get("chunk") != [chunk.start, chunk.end, chunk.core_start, chunk.core_end]:
                return None
            return Performance.from_dict(data["notes"])
        except (ValueError, KeyError, AttributeError):
            return None  # from an older layout, or damaged: the chunk is done again

    def finished(self) -> int:
        return len(self.store.keys(f"{self.key}/chunks"))

    def save_performance(self, performance: Performance) -> str:
        return self.store.put(f"{self.key}/performance.json", json.dumps(performance.to_dict()).encode())

    def load_performance(self) -> Performance | None:
        data = self.store.get(f"{self.key}/performance.json")
        return None if data is None else Performance.from_dict(json.loads(data))

    def save_score(self, score_id: str, score: Score) -> str:
        return self.store.put(f"{self.key}/scores/{score_id}/score.json", json.dumps(score.to_dict()).encode())

    def load_score(self, score_id: str) -> Score | None:
        data = self.store.get(f"{self.key}/scores/{score_id}/score.json")
        return None if data is None else Score.from_dict(json.loads(data))

    def artifact(self, score_id: str, name: str) -> str:
        """The key of the artifact ``name`` (a file name made by this package) of a score."""
        return f"{self.key}/scores/{score_id}/artifacts/{name}"

    def remove(self) -> None:
        """Delete every object of the job (an earlier run's, or this one's once it is done)."""
        self.store.remove(self.key)


@contextmanager
def locked(lock: Path) -> Iterator[None]:
    """Hold the lock file ``lock`` (beside a local work folder, not in it: clearing the folder must
    not drop the lock) until the block ends; another run of the same job gets a clear error. The
    block removes the file itself, while holding it, when the job is done (a run that starts
    after that makes a new one)."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputError(f"{lock.parent}: cannot use this work folder ({exc.strerror or exc})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KimiError(f"another run is working on this input (work folder {lock.with_suffix('')})") from None
        yield
    finally:
        os.close(fd)
