"""The pipeline's stages, each a function of small, serializable inputs and outputs (references
into a :class:`Store`, :class:`Performance`, :class:`Score`), so any worker can run any stage:

fetch → :class:`Source` · decode → :class:`Samples` · plan → chunks · transcribe one chunk →
its notes (checkpointed) · merge → a Performance · score → a Score · engrave(format) → bytes ·
store → artifact references.

:func:`kimiwonosete.pipeline.run.transcribe` runs them one after another on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimiwonosete.audio import decode_into
from kimiwonosete.engrave.lilypond import Limits, lilypond_source, render_pdf
from kimiwonosete.engrave.midi import performance_midi, score_midi
from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.errors import InputError
from kimiwonosete.notes import Performance
from kimiwonosete.pipeline.executors import transcribe_chunk
from kimiwonosete.pipeline.store import Store
from kimiwonosete.pipeline.workfolder import Work, work_key
from kimiwonosete.score.build import DEFAULT_MODEL, build_score
from kimiwonosete.score.model import Score
from kimiwonosete.serial import from_plain, to_plain
from kimiwonosete.sources.links import Download, LinkOptions, fetch, is_link
from kimiwonosete.sources.midi import is_midi, read_performance
from kimiwonosete.transcription import Transcriber
from kimiwonosete.transcription.chunks import MARGIN_S, Chunk, merge_chunks, plan_chunks

#: format name -> file suffix after the stem
FORMATS = {
    "pdf": ".pdf",
    "ly": ".ly",
    "musicxml": ".musicxml",
    "mid": ".mid",
    "performance": ".performance.mid",
}


@dataclass(frozen=True)
class Source:
    """The recording to transcribe: a local file, and for a link what its page said."""

    path: Path
    link: Download | None = None

    @property
    def is_midi(self) -> bool:
        return is_midi(self.path)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return from_plain(cls, data)


@dataclass(frozen=True)
class Samples:
    """Decoded audio in a store: ``n_samples`` mono float32 at ``sample_rate``, under ``work``."""

    work: str
    sample_rate: int
    n_samples: int

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Samples:
        return from_plain(cls, data)


def fetch_source(text: str, options: LinkOptions, into: Path) -> Source:
    """Fetch: a link's recording downloaded under ``into`` (or found in ``options.cache``)."""
    if not is_link(text):
        return Source(Path(text))
    download = fetch(text, options, into)
    return Source(download.path, download)


def work_of(store: Store, source: Source, transcriber: Transcriber, chunk_s: float, start: float, end: float | None) -> Work:
    """The job's place in ``store``: keyed by the input's bytes, the model's settings (version,
    windows, device), the chunk length and margins and the part of the input taken."""
    path = source.path
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    key = work_key(path, transcriber=transcriber.settings(), chunk_s=chunk_s, margin_s=MARGIN_S, start=start, end=end)
    return Work(store, key)


def decode(work: Work, source: Source, sample_rate: int, start: float = 0.0, end: float | None = None,
           reuse: bool = False) -> Samples:
    """Decode: seconds ``start`` to ``end`` of the source, as samples in the work's store
    (re-used from an earlier run when ``reuse`` finds them there)."""
    count = work.sample_count() if reuse else None
    if count is None:
        try:
            with work.store.writer(work.samples) as out:
                count = decode_into(source.path, sample_rate, out, start, end)
        except InputError as exc:
            if source.link is None:
                raise
            # Name the link the user gave, not the temporary file it was saved to.
            raise InputError(str(exc).replace(str(source.path), source.link.url)) from None
    return Samples(work.key, sample_rate, count)


def plan(samples: Samples, chunk_s: float, workers: int = 1) -> list[Chunk]:
    """Plan: the chunks of ``samples``, balanced over ``workers`` (see :func:`plan_chunks`)."""
    return plan_chunks(samples.n_samples, samples.sample_rate, chunk_s, MARGIN_S, workers)


def transcribe_one(work: Work, chunk: Chunk, transcriber: Transcriber) -> Performance:
    """Transcribe one chunk, on any worker that reaches the store: its samples read from there
    (only its part), its notes checkpointed there. (The local driver's executors return the
    notes instead, and the driver checkpoints them: Ray's nodes need not reach its folder.)"""
    performance = transcribe_chunk(transcriber, work.read_samples(chunk.start, chunk.end), chunk)
    work.save_chunk(chunk, performance)
    return performance


def merge(work: Work, samples: Samples, chunks: list[Chunk]) -> Performance:
    """Merge: one performance from every chunk's checkpoint, stored as the job's merged notes."""
    parts = [work.load_chunk(c) for c in chunks]
    missing = [c.index for c, p in zip(chunks, parts) if p is None]
    if missing:
        raise RuntimeError(f"chunks {missing} of {work.key} have no checkpoint")
    performance = merge_chunks(chunks, parts, samples.sample_rate)  # type: ignore[arg-type]
    work.save_performance(performance)
    return performance


def read_midi(source: Source, start: float = 0.0, end: float | None = None) -> Performance:
    """A MIDI performance instead of decode → transcribe → merge: its notes and pedal from
    ``start`` to ``end`` seconds, cut to that span and moved to start at 0."""
    performance = read_performance(source.path)
    if start and start >= performance.duration:
        raise InputError(f"{source.path}: the MIDI file ends at {performance.duration:.1f} s, before the part asked for")
    return performance.span(start, end)


def score(performance: Performance, title: str, source: Source | None = None, model: str = DEFAULT_MODEL) -> Score:
    """Score: the notated score of ``performance`` (``model``: the learned score model or the
    rules); a link's uploader and address are credited."""
    built = build_score(performance, title, model)
    if source is not None and source.link is not None:
        built.uploader, built.url = source.link.uploader, source.link.url
    return built


@dataclass
class Engraved:
    """One format's bytes, and what the engraver warned about (LilyPond's failed bar checks, ...)."""

    data: bytes
    warnings: list[str] = field(default_factory=list)


def engrave(score: Score, fmt: str, performance: Performance | None = None, limits: Limits | None = None) -> Engraved:
    """Engrave: ``score`` as one of :data:`FORMATS` (``performance``, the notes as played, needs
    the performance; ``limits``: what LilyPond may use, for the PDF)."""
    if fmt == "pdf":
        warnings: list[str] = []
        pdf = render_pdf(lilypond_source(score), warnings=warnings, limits=limits)
        return Engraved(pdf, warnings)
    if fmt == "ly":
        return Engraved(lilypond_source(score).encode("utf-8"))
    if fmt == "musicxml":
        return Engraved(musicxml_bytes(score))
    if fmt == "mid":
        return Engraved(score_midi(score))
    if fmt == "performance":
        if performance is None:
            raise ValueError("the performance format needs the performance")
        return Engraved(performance_midi(performance))
    raise ValueError(f"unknown format {fmt!r}")


def store_artifacts(store: Store, files: dict[str, bytes]) -> dict[str, str]:
    """Store: each ``key -> bytes`` written whole into ``store``; ``key -> reference``."""
    return {key: store.put(key, data) for key, data in files.items()}


def artifact_name(stem: str, fmt: str) -> str:
    """The file name of format ``fmt`` for ``stem``.

    >>> artifact_name("minuet", "performance")
    'minuet.performance.mid'
    """
    return stem + FORMATS[fmt]


__all__ = ["FORMATS", "Engraved", "Samples", "Source", "decode", "engrave", "fetch_source", "merge", "plan",
           "read_midi", "score", "store_artifacts", "transcribe_one", "work_of"]
