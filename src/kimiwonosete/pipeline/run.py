"""The whole pipeline for one input: decode, transcribe, build the score, engrave, store."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from kimiwonosete.engrave.lilypond import lilypond_source, render_pdf
from kimiwonosete.engrave.midi import performance_midi, score_midi
from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.engrave.text import clean_text
from kimiwonosete.errors import InputError, KimiError, OutputError
from kimiwonosete.files import check_writable, write_bytes_atomic
from kimiwonosete.notes import Performance
from kimiwonosete.pipeline.executors import ChunkJob, Executor, get_executor
from kimiwonosete.pipeline.progress import QuietReporter, Reporter
from kimiwonosete.pipeline.workfolder import WorkFolder, default_root, job_key
from kimiwonosete.score.build import build_score
from kimiwonosete.score.model import Score
from kimiwonosete.sources.links import Download, LinkOptions, check_length, fetch, is_link
from kimiwonosete.sources.midi import is_midi, read_performance
from kimiwonosete.transcription import DEFAULT_BACKEND, Transcriber, get_transcriber
from kimiwonosete.transcription.chunks import CHUNK_S, MARGIN_S, merge_chunks, plan_chunks

#: format name -> file suffix after the stem
FORMATS = {
    "pdf": ".pdf",
    "ly": ".ly",
    "musicxml": ".musicxml",
    "mid": ".mid",
    "performance": ".performance.mid",
}
T = TypeVar("T")
MAX_STEM_CHARS = 80


@dataclass
class Result:
    """What one run produced: the notes, the score, the files written and the time each stage took."""

    #: the input file's path, or the link
    source: str
    performance: Performance
    score: Score
    artifacts: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: chunks of the recording: how many, and how many came from an interrupted run's checkpoints
    chunks: dict[str, int] = field(default_factory=dict)
    #: where a link's recording came from (its page's title, uploader, address)
    link: Download | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (paths, duration, note count, tempo, key, meter, timings)."""
        return {
            "source": self.source,
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
            "duration_s": round(self.performance.duration, 3),
            "notes": len(self.performance.notes),
            "pedals": len(self.performance.pedals),
            "tempo_qpm": self.score.tempo,
            "key": str(self.score.key),
            "time_signature": str(self.score.time_signature),
            "bars": self.score.n_bars,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "chunks": self.chunks,
            "link": {"url": self.link.url, "title": self.link.title, "uploader": self.link.uploader}
            if self.link is not None else None,
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
    executor: str | Executor = "local",
    workers: int | None = None,
    chunk_s: float = CHUNK_S,
    resume: bool = False,
    workdir: str | os.PathLike[str] | None = None,
    start: float = 0.0,
    end: float | None = None,
    links: LinkOptions | None = None,
    stem: str | None = None,
) -> Result:
    """Transcribe the recording at ``path`` (a file or a link) and write the chosen formats to
    ``outdir``.

    A link (any page yt-dlp supports, or a direct link to a media file) is fetched first, with
    ``links`` (limits, cookies, cache, address policy); its title and uploader go into the score.
    A MIDI file (``.mid``, ``.midi``) is taken as the performance itself: no transcription.
    Seconds ``start`` to ``end`` of the audio are decoded into a work folder (under ``workdir``,
    default :func:`default_root`), cut into ``chunk_s``-second chunks that ``executor``
    (``local``, ``ray``, ``ray://HOST:PORT`` or an :class:`Executor`) transcribes with ``workers``
    workers, each chunk checkpointed; ``resume`` re-uses the checkpoints of an interrupted run of
    the same job. The work folder is removed once the job has succeeded.

    The files are named ``stem`` + suffix (default: the input file's stem, or for a link a stem
    made from its title). With ``outdir=None`` nothing is written; the result still holds notes
    and score.

    >>> result = transcribe("piece.flac", "out")  # doctest: +SKIP
    >>> result.artifacts["pdf"]  # doctest: +SKIP
    PosixPath('out/piece.pdf')
    """
    text = os.fspath(path)
    reporter = reporter or QuietReporter()
    chosen = parse_formats(formats)
    if chunk_s <= 0:
        raise KimiError("the chunk length must be positive")
    if start < 0 or (end is not None and end <= start):
        raise KimiError("--start must be 0 or more and --end after it")
    if isinstance(executor, str):
        executor = get_executor(executor, workers)
    out = Path(outdir) if outdir is not None else None
    if out is not None:
        check_writable(out)  # fail now, not after minutes of transcription
    stages = _Stages(reporter)
    with contextlib.ExitStack() as stack:
        download: Download | None = None
        if is_link(text):
            options = replace(links or LinkOptions(), span=(start, end))
            into = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kimiwonosete-download-")))
            download = stages.run("download", partial(fetch, text, options, into))
            source = download.path
            stem = stem or safe_stem(download.title or download.id)
        else:
            source = Path(text)
            stem = stem or source.stem
        targets = {name: out / (stem + FORMATS[name]) for name in chosen} if out is not None else {}
        for target in targets.values():
            if target.resolve() == source.resolve():
                raise OutputError(f"{target}: writing it would overwrite the input; choose another output folder (-o)")
        if is_midi(source):
            performance = stages.run("read MIDI", partial(read_performance, source))
            work = None
        else:
            transcriber = get_transcriber(model, device)
            work = _work_folder(source, transcriber, model, chunk_s, start, end, workdir)
            with work.locked():
                if not resume and work.finished():
                    stages.warn(f"an interrupted run of this input had finished {work.finished()} chunks: "
                                "starting over (--resume would re-use them)")
                if not resume:
                    work.clear()
                try:
                    n_samples = stages.run("decode", partial(work.decode, source, transcriber.sample_rate, resume, start, end))
                except InputError as exc:
                    if download is None:
                        raise
                    # Name the link the user gave, not the temporary file it was saved to.
                    raise InputError(str(exc).replace(str(source), download.url)) from None
                if download is not None and download.duration is None:
                    check_length(download.url, n_samples / transcriber.sample_rate, replace(options, span=(0.0, None)))
                performance = stages.run("transcribe", partial(
                    _transcribe_chunks, work, n_samples, transcriber, model, executor, chunk_s, reporter, stages.chunks))
    if not performance.notes:
        stages.warn("no notes were found (silence?): the score is one empty bar")
    score = stages.run("score", lambda: build_score(performance, title if title is not None else
                                                      (download.title if download is not None else stem)))
    if download is not None:
        score.uploader, score.url = download.uploader, download.url
    result = Result(text, performance, score, timings=stages.timings,
                    warnings=stages.warnings, chunks=stages.chunks, link=download)
    if out is not None:
        rendered = stages.run("engrave", partial(_engrave, score, performance, chosen))
        for name, data in rendered.items():
            write_bytes_atomic(targets[name], data)
            result.artifacts[name] = targets[name]
    if work is not None:
        work.remove()
    return result


class _Stages:
    """Runs stages, timing them and telling the reporter; collects warnings and chunk counts."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.chunks: dict[str, int] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.reporter.warn(message)

    def run(self, name: str, fn: Callable[[], T]) -> T:
        self.reporter.start(name)
        t0 = time.perf_counter()
        value = fn()
        self.timings[name] = time.perf_counter() - t0
        self.reporter.finish(name, self.timings[name])
        return value


def safe_stem(text: str) -> str:
    """A file name stem made from untrusted text (a video's title): letters, digits, ``-_.``.

    >>> safe_stem("Chopin: Nocturne Op. 9/2 (live)"), safe_stem("../../etc"), safe_stem("")
    ('Chopin_Nocturne_Op._9_2_live', 'etc', 'recording')
    """
    stem = re.sub(r"[^\w.-]+", "_", clean_text(text)).strip("._-")[:MAX_STEM_CHARS].rstrip("._-")
    return stem or "recording"


def _work_folder(source: Path, transcriber: Transcriber, model: str, chunk_s: float, start: float, end: float | None,
                 workdir: str | os.PathLike[str] | None) -> WorkFolder:
    if not source.is_file():
        raise InputError(f"{source}: no such file" if not source.exists() else f"{source}: not a file")
    key = job_key(source, model=model, device=getattr(transcriber, "device", "cpu"), sample_rate=transcriber.sample_rate,
                  chunk_s=chunk_s, margin_s=MARGIN_S, start=start, end=end)
    return WorkFolder(Path(workdir) if workdir is not None else default_root(), key)


def _engrave(score: Score, performance: Performance, chosen: list[str]) -> dict[str, bytes]:
    ly = lilypond_source(score)
    makers: dict[str, Callable[[], bytes]] = {
        "pdf": lambda: render_pdf(ly),
        "ly": lambda: ly.encode("utf-8"),
        "musicxml": lambda: musicxml_bytes(score),
        "mid": lambda: score_midi(score),
        "performance": lambda: performance_midi(performance),
    }
    return {name: makers[name]() for name in chosen}


def _transcribe_chunks(
    work: WorkFolder,
    n_samples: int,
    transcriber: Transcriber,
    model: str,
    executor: Executor,
    chunk_s: float,
    reporter: Reporter,
    counts: dict[str, int],
) -> Performance:
    """The merged notes of every chunk of ``work``'s samples: checkpointed ones loaded, the
    others transcribed by ``executor`` and checkpointed as they finish."""
    rate = transcriber.sample_rate
    plan = plan_chunks(n_samples, rate, chunk_s)
    parts = {c.index: p for c in plan if (p := work.load(c)) is not None}
    counts.update(total=len(plan), reused=len(parts))
    todo = [c for c in plan if c.index not in parts]
    job = ChunkJob(model, getattr(transcriber, "device", "cpu"), rate, str(work.samples))
    # A single chunk reports the model's own windows; several report whole chunks.
    windows = reporter.advance if len(plan) == 1 else None
    if windows is None and parts:
        reporter.advance(len(parts), len(plan))
    for chunk, performance in executor.run(job, todo, progress=windows) if todo else ():
        work.save(chunk, performance)
        parts[chunk.index] = performance
        if windows is None:
            reporter.advance(len(parts), len(plan))
    return merge_chunks(plan, [parts[c.index] for c in plan], rate)
