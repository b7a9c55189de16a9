"""The whole pipeline for one input: decode, transcribe, build the score, engrave, store."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from kimiwonosete.audio import decode
from kimiwonosete.engrave.lilypond import lilypond_source, render_pdf
from kimiwonosete.engrave.midi import performance_midi, score_midi
from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.errors import KimiError, OutputError
from kimiwonosete.files import check_writable, write_bytes_atomic
from kimiwonosete.notes import Performance
from kimiwonosete.pipeline.progress import QuietReporter, Reporter
from kimiwonosete.score.build import build_score
from kimiwonosete.score.model import Score
from kimiwonosete.sources.midi import is_midi, read_performance
from kimiwonosete.transcription import DEFAULT_BACKEND, get_transcriber

#: format name -> file suffix after the stem
FORMATS = {
    "pdf": ".pdf",
    "ly": ".ly",
    "musicxml": ".musicxml",
    "mid": ".mid",
    "performance": ".performance.mid",
}
T = TypeVar("T")


@dataclass
class Result:
    """What one run produced: the notes, the score, the files written and the time each stage took."""

    source: Path
    performance: Performance
    score: Score
    artifacts: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (paths, duration, note count, tempo, key, meter, timings)."""
        return {
            "source": str(self.source),
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
            "duration_s": round(self.performance.duration, 3),
            "notes": len(self.performance.notes),
            "pedals": len(self.performance.pedals),
            "tempo_qpm": self.score.tempo,
            "key": str(self.score.key),
            "time_signature": str(self.score.time_signature),
            "bars": self.score.n_bars,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": self.warnings,
        }


def parse_formats(text: str | Iterable[str]) -> list[str]:
    """``"pdf,ly"`` or ``["pdf", "ly"]`` -> checked list of format names."""
    names = [f.strip() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise KimiError(f"unknown format {', '.join(unknown) or '(none)'}: choose from {', '.join(FORMATS)}")
    return names


def transcribe(
    path: str | os.PathLike[str],
    outdir: str | os.PathLike[str] | None = None,
    *,
    model: str = DEFAULT_BACKEND,
    device: str = "auto",
    formats: str | Iterable[str] = tuple(FORMATS),
    title: str | None = None,
    reporter: Reporter | None = None,
) -> Result:
    """Transcribe the recording at ``path`` and write the chosen formats to ``outdir``.

    A MIDI file (``.mid``, ``.midi``) is taken as the performance itself: no transcription.

    With ``outdir=None`` nothing is written; the result still holds notes and score.

    >>> result = transcribe("piece.flac", "out")  # doctest: +SKIP
    >>> result.artifacts["pdf"]  # doctest: +SKIP
    PosixPath('out/piece.pdf')
    """
    source = Path(path)
    reporter = reporter or QuietReporter()
    chosen = parse_formats(formats)
    transcriber = None if is_midi(source) else get_transcriber(model, device)
    out = Path(outdir) if outdir is not None else None
    targets = {name: out / (source.stem + FORMATS[name]) for name in chosen} if out is not None else {}
    for target in targets.values():
        if target.resolve() == source.resolve():
            raise OutputError(f"{target}: writing it would overwrite the input; choose another output folder (-o)")
    if out is not None:
        check_writable(out)  # fail now, not after minutes of transcription
    timings: dict[str, float] = {}

    def stage(name: str, fn: Callable[[], T]) -> T:
        reporter.start(name)
        t0 = time.perf_counter()
        value = fn()
        timings[name] = time.perf_counter() - t0
        reporter.finish(name, timings[name])
        return value

    if transcriber is None:
        performance = stage("read MIDI", partial(read_performance, source))
    else:
        audio = stage("decode", partial(decode, source, transcriber.sample_rate))
        performance = stage("transcribe", partial(transcriber.transcribe, audio, progress=reporter.advance))
        del audio  # the signal is not needed past transcription
    warnings: list[str] = []
    if not performance.notes:
        warnings.append("no notes were found (silence?): the score is one empty bar")
        reporter.warn(warnings[-1])
    score = stage("score", lambda: build_score(performance, title if title is not None else source.stem))
    result = Result(source, performance, score, timings=timings, warnings=warnings)
    if out is None:
        return result

    def engrave() -> dict[str, bytes]:
        ly = lilypond_source(score)
        makers: dict[str, Callable[[], bytes]] = {
            "pdf": lambda: render_pdf(ly),
            "ly": lambda: ly.encode("utf-8"),
            "musicxml": lambda: musicxml_bytes(score),
            "mid": lambda: score_midi(score),
            "performance": lambda: performance_midi(performance),
        }
        return {name: makers[name]() for name in chosen}

    rendered = stage("engrave", engrave)
    for name, data in rendered.items():
        write_bytes_atomic(targets[name], data)
        result.artifacts[name] = targets[name]
    return result
