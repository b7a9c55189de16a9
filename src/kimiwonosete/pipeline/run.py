"""The whole pipeline for one input on this machine: the stages of :mod:`.stages` one after
another, with timings, progress, a local work store and atomic output."""

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

from kimiwonosete.engrave.text import clean_text
from kimiwonosete.errors import KimiError, OutputError
from kimiwonosete.files import check_writable
from kimiwonosete.notes import Performance
from kimiwonosete.pipeline import stages
from kimiwonosete.pipeline.executors import ChunkJob, Executor, get_executor
from kimiwonosete.pipeline.progress import QuietReporter, Reporter
from kimiwonosete.pipeline.stages import FORMATS, Samples, Source
from kimiwonosete.pipeline.store import Store
from kimiwonosete.pipeline.workfolder import Work, default_root, locked
from kimiwonosete.score.build import DEFAULT_MODEL, SCORE_MODELS
from kimiwonosete.score.model import Score
from kimiwonosete.sources.links import Download, LinkOptions, check_length, is_link
from kimiwonosete.transcription import DEFAULT_BACKEND, Transcriber, get_transcriber
from kimiwonosete.transcription.chunks import CHUNK_S, Chunk, worker_count

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
    score_model: str = DEFAULT_MODEL,
) -> Result:
    """Transcribe the recording at ``path`` (a file or a link) and write the chosen formats to
    ``outdir``.

    A link (any page yt-dlp supports, or a direct link to a media file) is fetched first, with
    ``links`` (limits, cookies, cache, address policy); its title and uploader go into the score.
    A MIDI file (``.mid``, ``.midi``) is taken as the performance itself: no transcription.
    Seconds ``start`` to ``end`` of the audio (or of a MIDI performance) are taken. Audio is
    decoded into a work folder (under ``workdir``, default :func:`default_root`), cut into equal
    chunks of about ``chunk_s`` seconds at most, which ``executor`` (``local``, ``ray``,
    ``ray://HOST:PORT`` or an :class:`Executor`) transcribes with up to ``workers`` workers
    (see :func:`worker_count`), each chunk checkpointed; ``resume`` re-uses the checkpoints of an interrupted run of
    the same job. The work folder is removed once the job has succeeded.

    ``score_model`` reads beats, bars, metre and staves with the trained score model
    (``"learned"``) or with the rules (``"heuristic"``).

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
    if score_model not in SCORE_MODELS:
        raise KimiError(f"score model {score_model!r}: choose one of {', '.join(SCORE_MODELS)}")
    if start < 0 or (end is not None and end <= start):
        raise KimiError("--start must be 0 or more and --end after it")
    if isinstance(executor, str):
        executor = get_executor(executor, workers)
    out = Path(outdir) if outdir is not None else None
    if out is not None:
        check_writable(out)  # fail now, not after minutes of transcription
    steps = _Stages(reporter)
    options = replace(links or LinkOptions(), span=(start, end))
    with contextlib.ExitStack() as stack:
        if is_link(text):
            into = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kimiwonosete-download-")))
            source = steps.run("download", partial(stages.fetch_source, text, options, into))
        else:
            source = Source(Path(text))
        download = source.link
        stem = stem or (safe_stem(download.title or download.id) if download is not None else source.path.stem)
        targets = {name: stages.artifact_name(stem, name) for name in chosen}
        for name in targets.values():
            if out is not None and (out / name).resolve() == source.path.resolve():
                raise OutputError(f"{out / name}: writing it would overwrite the input; choose another output folder (-o)")
        work: Work | None = None
        if source.is_midi:
            performance = steps.run("read MIDI", partial(stages.read_midi, source, start, end))
        else:
            transcriber = get_transcriber(model, device)
            root = Path(workdir) if workdir is not None else default_root()
            work = stages.work_of(Store(root), source, transcriber, chunk_s, start, end)
            lock = root / f"{work.key}.lock"
            stack.enter_context(locked(lock))  # held until the work is removed, below
            performance = _transcribe(work, source, transcriber, model, executor, chunk_s, start, end, resume,
                                      options, reporter, steps)
        if not performance.notes:
            steps.warn("no notes were found (silence?): the score is one empty bar")
        score = steps.run("score", partial(stages.score, performance,
                                           title if title is not None else (download.title if download is not None else stem),
                                           source, score_model))
        result = Result(text, performance, score, timings=steps.timings,
                        warnings=steps.warnings, chunks=steps.chunks, link=download)
        if out is not None:
            rendered = steps.run("engrave", lambda: {n: stages.engrave(score, n, performance) for n in chosen})
            for engraved in rendered.values():
                for warning in engraved.warnings:
                    steps.warn(warning)
            stages.store_artifacts(Store(out), {targets[n]: e.data for n, e in rendered.items()})
            result.artifacts = {n: out / targets[n] for n in chosen}
        if work is not None:
            work.remove()  # while still holding its lock: a new run of the same job starts afresh
            lock.unlink(missing_ok=True)
    return result


def _transcribe(work: Work, source: Source, transcriber: Transcriber, model: str, executor: Executor, chunk_s: float,
                start: float, end: float | None, resume: bool, options: LinkOptions, reporter: Reporter,
                steps: _Stages) -> Performance:
    """decode → plan → transcribe each chunk (checkpointed) → merge, for this machine's driver."""
    if not resume and work.finished():
        steps.warn(f"an interrupted run of this input had finished {work.finished()} chunks: "
                   "starting over (--resume would re-use them)")
    if not resume:
        work.remove()
    rate = transcriber.sample_rate
    samples = steps.run("decode", partial(stages.decode, work, source, rate, start, end, resume))
    if source.link is not None and source.link.duration is None:
        check_length(source.link.url, samples.seconds, replace(options, span=(0.0, None)))
    job = ChunkJob(model, getattr(transcriber, "device", "cpu"), rate, work)
    return steps.run("transcribe", partial(_chunks, work, samples, job, executor, chunk_s, reporter, steps.chunks))


def _chunks(work: Work, samples: Samples, job: ChunkJob, executor: Executor, chunk_s: float, reporter: Reporter,
            counts: dict[str, int]) -> Performance:
    """Every chunk of ``samples`` transcribed: checkpointed ones re-used, the others transcribed by
    ``executor`` and checkpointed as they finish; then merged."""
    workers = worker_count(samples.n_samples, samples.sample_rate, chunk_s, executor.slots(job))
    plan = stages.plan(samples, chunk_s, workers)
    done: set[Chunk] = {c for c in plan if work.load_chunk(c) is not None}
    counts.update(total=len(plan), reused=len(done))
    todo = [c for c in plan if c not in done]
    # A single chunk reports the model's own windows; several report whole chunks.
    windows = reporter.advance if len(plan) == 1 else None
    if windows is None and done:
        reporter.advance(len(done), len(plan))
    for chunk, performance in executor.run(job, todo, workers, progress=windows) if todo else ():
        work.save_chunk(chunk, performance)
        done.add(chunk)
        if windows is None:
            reporter.advance(len(done), len(plan))
    return stages.merge(work, samples, plan)


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
