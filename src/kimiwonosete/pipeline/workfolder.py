"""A job's work folder: the decoded samples and one checkpoint per finished chunk.

The folder is named by a hash of the input's bytes and of everything that decides the notes (the
model, its sample rate, the chunk plan), so re-running the same job finds the chunks an
interrupted run finished. Every file is written under a temporary name and renamed, so a run
killed at any moment leaves only complete checkpoints behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kimiwonosete.audio import decode_to_file
from kimiwonosete.errors import KimiError, OutputError
from kimiwonosete.files import cache_home, write_bytes_atomic
from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.transcription.chunks import Chunk

HASH_BLOCK = 1 << 20
#: Bump when the checkpoint layout or the merge changes what a chunk file means.
LAYOUT = 1


def default_root() -> Path:
    return cache_home() / "work"


def job_key(source: Path, **settings: object) -> str:
    """A hex digest of ``source``'s bytes and the ``settings`` that decide its notes."""
    digest = hashlib.sha256(json.dumps({"layout": LAYOUT, **settings}, sort_keys=True).encode())
    with open(source, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()[:24]


class WorkFolder:
    """``root/<key>``: ``samples.f32`` (mono float32) and ``chunks/NNNNN.json``.

    >>> import tempfile
    >>> work = WorkFolder(Path(tempfile.mkdtemp()), "k")
    >>> chunk = Chunk(0, 0, 10, 0, 10)
    >>> work.save(chunk, Performance([Note(0.5, 1.0, 60, 90)], [Pedal(0.0, 2.0)], 10.0))
    >>> work.load(chunk).notes, work.finished()
    ([Note(onset=0.5, offset=1.0, pitch=60, velocity=90)], 1)
    """

    def __init__(self, root: Path, key: str) -> None:
        self.path = Path(root) / key
        self.samples = self.path / "samples.f32"
        self.chunks = self.path / "chunks"

    @contextmanager
    def locked(self) -> Iterator[WorkFolder]:
        """Hold the folder for this process (another run of the same job gets a clear error)."""
        try:
            self.chunks.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot use this work folder ({exc.strerror or exc})") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise KimiError(f"another run is working on this input (work folder {self.path})") from None
            yield self
        finally:
            os.close(fd)

    def decode(self, source: Path, sample_rate: int, reuse: bool, start: float = 0.0, end: float | None = None) -> int:
        """The number of samples of ``source`` (seconds ``start`` to ``end``) in ``samples.f32``,
        decoding it unless ``reuse`` finds it there already."""
        if not (reuse and self.samples.exists()):
            return decode_to_file(source, sample_rate, self.samples, start, end)
        return self.samples.stat().st_size // 4

    def _file(self, chunk: Chunk) -> Path:
        return self.chunks / f"{chunk.index:05d}.json"

    def save(self, chunk: Chunk, performance: Performance) -> None:
        data = {
            "chunk": [chunk.start, chunk.end, chunk.core_start, chunk.core_end],
            "notes": [[n.onset, n.offset, n.pitch, n.velocity] for n in performance.notes],
            "pedals": [[p.onset, p.offset] for p in performance.pedals],
            "duration": performance.duration,
        }
        write_bytes_atomic(self._file(chunk), json.dumps(data).encode())

    def load(self, chunk: Chunk) -> Performance | None:
        """The checkpoint of ``chunk``, or ``None`` if there is none for exactly this chunk."""
        try:
            data = json.loads(self._file(chunk).read_bytes())
        except (OSError, ValueError):
            return None
        if data.get("chunk") != [chunk.start, chunk.end, chunk.core_start, chunk.core_end]:
            return None
        return Performance(
            [Note(on, off, int(p), int(v)) for on, off, p, v in data["notes"]],
            [Pedal(on, off) for on, off in data["pedals"]],
            duration=data["duration"],
        )

    def finished(self) -> int:
        return sum(1 for _ in self.chunks.glob("*.json"))

    def clear(self) -> None:
        """Forget an earlier run's samples and checkpoints (the folder itself stays, locked)."""
        self.samples.unlink(missing_ok=True)
        for f in self.chunks.glob("*.json"):
            f.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
