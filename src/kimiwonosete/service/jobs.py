"""A job as a durable DBOS workflow: fetch → decode → plan → the chunks (child workflows on a
queue with a concurrency limit, their compute in :mod:`.compute`'s pool) → merge → score →
engrave → the web page's view (:mod:`.pageview`) → webhook, each a step whose output DBOS
records, so a process killed mid-job resumes from its last finished step (and finished chunk)
when one with the same executor id starts.

- Steps pass references into the store (keys, counts), never audio: their outputs are pickled
  into the database.
- Steps are at-least-once, so everything is written to keys fixed by the job (``jobs/<id>/…``),
  whole or not at all (:class:`Store`): a step run twice writes the same objects.
- A user's error (:class:`KimiError`: bad link, not audio, too long) is not retried: the job
  ends ``failed`` with its one line. Other errors (the network, storage, a worker that died) are
  retried with backoff; a job is recovered at most :data:`MAX_RECOVERY` times, so an input that
  kills its process each time fails instead of looping.

DBOS keeps one instance per process and finds workflows by name when it recovers them, so the
workflows are module functions that reach the service's parts (store, pool, policy) through the
one :data:`_runtime` slot, filled by :func:`start` and emptied by :func:`stop`: the process's
only DBOS state lives in this module.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID
from dbos._error import DBOSAwaitedWorkflowCancelledError

from kimiwonosete.engrave.text import clean_text
from kimiwonosete.errors import InputError, KimiError
from kimiwonosete.pipeline import stages
from kimiwonosete.pipeline.executors import ChunkJob
from kimiwonosete.pipeline.stages import Source
from kimiwonosete.pipeline.store import Store
from kimiwonosete.pipeline.workfolder import Work
from kimiwonosete.service.compute import ChunkPool, make_pool
from kimiwonosete.service.config import ServiceConfig
from kimiwonosete.service.logs import log
from kimiwonosete.service.webhooks import WebhookRefused, load_secret, send
from kimiwonosete.sources.links import Download, LinkOptions, LinkPolicy
from kimiwonosete.transcription import basic_pitch, transkun
from kimiwonosete.transcription.chunks import Chunk, worker_count

JOB_WORKFLOW = "kimiwonosete.job"
CHUNK_WORKFLOW = "kimiwonosete.chunk"
JOB_QUEUE = "kimiwonosete-jobs"
CHUNK_QUEUE = "kimiwonosete-chunks"
#: the workflow event holding the job's state (see :mod:`.views`)
STATE = "state"
MAX_RECOVERY = 3
#: stored artifacts are ``piece`` + the format's suffix, never a name a user gave
STEM = "piece"
SAMPLE_RATES = {"transkun": transkun.SAMPLE_RATE, "basic-pitch": basic_pitch.SAMPLE_RATE}
_RETRY = {"retries_allowed": True, "max_attempts": 4, "interval_seconds": 1.0, "backoff_rate": 2.0,
          "should_retry": lambda exc: not isinstance(exc, KimiError)}


@dataclass
class Runtime:
    config: ServiceConfig
    store: Store
    pool: ChunkPool | None
    policy: LinkPolicy
    secret: str
    logger: logging.Logger
    #: held while verovio renders (its toolkits share font resources: one at a time in a process),
    #: by the job's last step and by the page's endpoints alike (see :func:`.sheet.load_or_render`)
    engraving: threading.Lock = field(default_factory=threading.Lock)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the job runtime is not started")
    return _runtime


def start(config: ServiceConfig, logger: logging.Logger) -> Runtime:
    """Launch DBOS on ``config.database`` (recovering this executor's unfinished jobs), the pool
    (unless ``config.workers`` is 0: an API-only process dequeues nothing) and the queues."""
    global _runtime
    if _runtime is not None:
        raise RuntimeError("the job runtime is already started")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.storage, **config.storage_options)
    pool = make_pool(config.executor, config.workers) if config.workers else None
    _runtime = Runtime(config, store, pool, LinkPolicy(allow_private=config.allow_private_urls),
                       load_secret(config.data_dir, config.webhook_secret), logger)
    dbos_config: DBOSConfig = {
        "name": "kimiwonosete",
        "system_database_url": config.database,
        "executor_id": config.executor_id,
        "run_admin_server": False,
        "log_level": "WARNING",
        "application_version": "kimiwonosete-1",
    }
    try:
        DBOS(config=dbos_config)
        if not config.workers:
            DBOS.listen_queues([])
        DBOS.launch()
        conflict = "always_update" if config.workers else "never_update"
        DBOS.register_queue(JOB_QUEUE, worker_concurrency=config.job_slots, polling_interval_sec=0.2, on_conflict=conflict)
        DBOS.register_queue(CHUNK_QUEUE, worker_concurrency=max(1, config.workers), polling_interval_sec=0.2,
                            on_conflict=conflict)
    except BaseException:
        stop()
        raise
    log(logger, "started", executor_id=config.executor_id, workers=config.workers, embedded=config.embedded)
    return _runtime


def stop() -> None:
    global _runtime
    DBOS.destroy()
    if _runtime is not None and _runtime.pool is not None:
        _runtime.pool.close()
    _runtime = None


def submit(job_id: str, request: dict[str, Any]) -> None:
    """Queue the job ``job_id`` (its workflow id: a second submit of the same id is the same job)."""
    queue = DBOS.retrieve_queue(JOB_QUEUE)
    assert queue is not None
    with SetWorkflowID(job_id):
        queue.enqueue(job_workflow, job_id, request)
    log(runtime().logger, "job queued", job=job_id)


def prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def artifact_key(job_id: str, name: str) -> str:
    return f"{prefix(job_id)}/artifacts/{name}"


def _work(job_id: str) -> Work:
    return Work(runtime().store, f"{prefix(job_id)}/work")


@contextlib.contextmanager
def local_copy(store: Store, key: str) -> Iterator[Path]:
    """``key`` as a local file: itself in a folder store, else a private copy that is removed."""
    if store.local:
        yield Path(store.root) / key
        return
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-in-") as tmp:
        path = Path(tmp) / Path(key).name
        with store.fs.open(store._path(key), "rb") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield path


def _suffix(path: Path) -> str:
    """A downloaded file's suffix if it is a plain one (yt-dlp names it from the stream), else ``.bin``."""
    return path.suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,5}", path.suffix.lower()) else ".bin"


# Steps ----------------------------------------------------------------------------------------


@DBOS.step(name="kimiwonosete.fetch", **_RETRY)
def fetch_step(job_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """The recording, in the store: an upload is there already; a link is downloaded (under the
    link policy, in a process of its own) and copied in."""
    rt, source = runtime(), request["source"]
    t0 = time.perf_counter()
    if source["kind"] == "upload":
        return {"key": source["key"], "midi": source["midi"], "link": None, "seconds": 0.0}
    options = LinkOptions(policy=rt.policy, max_duration_s=rt.config.max_duration_s,
                          span=(request["start"], request["end"]), cache=None)
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-download-") as tmp:
        fetched = stages.fetch_source(source["url"], options, Path(tmp))
        assert fetched.link is not None
        key = f"{prefix(job_id)}/input/source{'.mid' if fetched.is_midi else _suffix(fetched.path)}"
        with rt.store.writer(key) as out, open(fetched.path, "rb") as media:
            shutil.copyfileobj(media, out, 1 << 20)
        d = fetched.link
        link = {"url": d.url, "title": d.title, "uploader": d.uploader, "duration": d.duration, "id": d.id}
    return {"key": key, "midi": fetched.is_midi, "link": link, "seconds": time.perf_counter() - t0}


def _check_length(seconds: float, limit_s: float) -> None:
    if seconds > limit_s:
        raise InputError(f"the recording is {seconds / 60:.1f} min long (the part asked for), over this server's "
                         f"{limit_s / 60:g} min limit (take part of it with start/end)")


def _named(exc: InputError, path: Path, name: str) -> InputError:
    """The error with the private copy's path replaced by what the user knows (the link, "the upload")."""
    return InputError(str(exc).replace(str(path), name))


@DBOS.step(name="kimiwonosete.decode", **_RETRY)
def decode_step(job_id: str, src: dict[str, Any], model: str, start: float, end: float | None) -> dict[str, Any]:
    rt = runtime()
    t0 = time.perf_counter()
    with local_copy(rt.store, src["key"]) as path:
        try:
            samples = stages.decode(_work(job_id), Source(path), SAMPLE_RATES[model], start, end)
        except InputError as exc:
            raise _named(exc, path, src["link"]["url"] if src["link"] else "the upload") from None
    if samples.n_samples == 0:
        raise InputError(f"{src['link']['url'] if src['link'] else 'the upload'}: no audio in the part asked for")
    _check_length(samples.seconds, rt.config.max_duration_s)
    return {"rate": samples.sample_rate, "n": samples.n_samples, "seconds": time.perf_counter() - t0}


@DBOS.step(name="kimiwonosete.plan")
def plan_step(samples: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    """The chunks, balanced over this server's workers (recorded: a resumed job keeps its plan)."""
    rt = runtime()
    n, rate = samples["n"], samples["rate"]
    workers = worker_count(n, rate, rt.config.chunk_s, max(1, rt.config.workers))
    plan = stages.plan(stages.Samples("", rate, n), rt.config.chunk_s, workers)
    return [(c.index, c.start, c.end, c.core_start, c.core_end) for c in plan]


@DBOS.step(name="kimiwonosete.transcribe_chunk", **_RETRY)
def transcribe_step(job_id: str, model: str, rate: int, chunk: tuple[int, int, int, int, int]) -> dict[str, Any]:
    """One chunk: its checkpoint if an earlier attempt finished it, else computed by the pool and
    checkpointed."""
    rt = runtime()
    work, part = _work(job_id), Chunk(*chunk)
    if work.load_chunk(part) is not None:
        log(rt.logger, "chunk reused", job=job_id, chunk=part.index)
        return {"index": part.index, "reused": True, "seconds": 0.0}
    if rt.pool is None:
        raise RuntimeError("this process has no workers")
    t0 = time.perf_counter()
    performance = rt.pool.transcribe(ChunkJob(model, "auto", rate, work), part)
    if DBOS.get_workflow_status(job_id) is None:
        return {"index": part.index, "reused": False, "seconds": 0.0}  # deleted meanwhile: leave nothing behind
    work.save_chunk(part, performance)
    seconds = time.perf_counter() - t0
    log(rt.logger, "chunk done", job=job_id, chunk=part.index, notes=len(performance.notes), seconds=round(seconds, 3))
    return {"index": part.index, "reused": False, "seconds": seconds}


@DBOS.workflow(name=CHUNK_WORKFLOW, max_recovery_attempts=MAX_RECOVERY)
def chunk_workflow(job_id: str, model: str, rate: int, chunk: tuple[int, int, int, int, int]) -> dict[str, Any]:
    return transcribe_step(job_id, model, rate, chunk)


@DBOS.step(name="kimiwonosete.merge", **_RETRY)
def merge_step(job_id: str, samples: dict[str, Any], plan: list[tuple[int, int, int, int, int]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    work = _work(job_id)
    stages.merge(work, stages.Samples("", samples["rate"], samples["n"]), [Chunk(*c) for c in plan])
    work.store.remove(work.samples)  # every chunk is checkpointed: the decoded audio is not needed again
    return {"seconds": time.perf_counter() - t0}


@DBOS.step(name="kimiwonosete.read_midi", **_RETRY)
def midi_step(job_id: str, src: dict[str, Any], start: float, end: float | None) -> dict[str, Any]:
    rt = runtime()
    t0 = time.perf_counter()
    with local_copy(rt.store, src["key"]) as path:
        try:
            performance = stages.read_midi(Source(path), start, end)
        except InputError as exc:
            raise _named(exc, path, src["link"]["url"] if src["link"] else "the upload") from None
    _check_length(performance.duration, rt.config.max_duration_s)
    _work(job_id).save_performance(performance)
    return {"seconds": time.perf_counter() - t0}


def _source(src: dict[str, Any]) -> Source:
    link = src["link"]
    download = Download(Path(src["key"]), link["url"], link["title"], link["uploader"], link["duration"], link["id"]) \
        if link else None
    return Source(Path(src["key"]), download)


@DBOS.step(name="kimiwonosete.score", **_RETRY)
def score_step(job_id: str, src: dict[str, Any], title: str, score_model: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    work = _work(job_id)
    performance = work.load_performance()
    if performance is None:
        raise RuntimeError(f"job {job_id}: the merged notes are missing from the store")
    score = stages.score(performance, title, _source(src), score_model)
    work.save_score("main", score)
    return {"duration_s": round(performance.duration, 3), "notes": len(performance.notes),
            "pedals": len(performance.pedals), "tempo_qpm": score.tempo, "key": str(score.key),
            "time_signature": str(score.time_signature), "bars": score.n_bars,
            "empty": not performance.notes, "seconds": time.perf_counter() - t0}


@DBOS.step(name="kimiwonosete.engrave", **_RETRY)
def engrave_step(job_id: str, formats: list[str]) -> dict[str, Any]:
    """Every format, written whole to ``jobs/<id>/artifacts/piece.<suffix>``; LilyPond under the
    server's limits."""
    rt = runtime()
    t0 = time.perf_counter()
    work = _work(job_id)
    score, performance = work.load_score("main"), work.load_performance()
    if score is None or performance is None:
        raise RuntimeError(f"job {job_id}: the score is missing from the store")
    names, warnings = {}, []
    for fmt in formats:
        engraved = stages.engrave(score, fmt, performance, limits=rt.config.lilypond)
        names[fmt] = stages.artifact_name(STEM, fmt)
        rt.store.put(artifact_key(job_id, names[fmt]), engraved.data)
        warnings.extend(engraved.warnings)
    return {"artifacts": names, "warnings": warnings, "seconds": time.perf_counter() - t0}


@DBOS.step(name="kimiwonosete.page_view")
def view_step(job_id: str, artifacts: dict[str, str], start: float, end: float | None) -> dict[str, Any]:
    """What the web page shows of the job (its score's SVG pages, its two players' audio), made
    before the job is done so that the first look at it is a read. Not retried, and never fails
    the job: what it could not make, the page makes when asked (or says why not)."""
    from kimiwonosete.service import pageview  # imported here: it (through listen) imports this module

    rt = runtime()
    t0 = time.perf_counter()
    failures = pageview.prepare(rt.store, job_id, artifacts, {"start": start, "end": end}, rt.engraving)
    for failure in failures:
        log(rt.logger, "page view not made", logging.WARNING, job=job_id, reason=failure)
    return {"failures": failures, "seconds": time.perf_counter() - t0}


@DBOS.step(name="kimiwonosete.webhook", retries_allowed=True, max_attempts=5, interval_seconds=1.0, backoff_rate=2.0,
           should_retry=lambda exc: not isinstance(exc, WebhookRefused))
def webhook_step(url: str, job_id: str, payload: dict[str, Any]) -> int:
    rt = runtime()
    status = send(url, f"msg_{job_id}", payload, rt.secret, rt.policy)
    log(rt.logger, "webhook sent", job=job_id, status=status)
    return status


@DBOS.step(name="kimiwonosete.clock")
def clock_step() -> float:
    return time.time()


# The workflow ----------------------------------------------------------------------------------


def _set_state(job_id: str, current: dict[str, Any], **changes: Any) -> None:
    current.update(changes)
    DBOS.set_event(STATE, dict(current))
    log(runtime().logger, f"job {current['state']}", job=job_id,
        **{k: v for k, v in changes.items() if k in ("reason", "chunks_total")})


@DBOS.workflow(name=JOB_WORKFLOW, max_recovery_attempts=MAX_RECOVERY)
def job_workflow(job_id: str, request: dict[str, Any]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    state: dict[str, Any] = {"state": "queued", "timings_s": timings}
    summary: dict[str, Any] = {"id": job_id, "state": "failed"}
    try:
        url = request["source"].get("url")
        if url:
            _set_state(job_id, state, state="downloading")
        src = fetch_step(job_id, request)
        if url:
            timings["download"] = round(src["seconds"], 3)
        chunks = {"total": 0, "reused": 0}
        _set_state(job_id, state, state="decoding")
        if src["midi"]:
            timings["read MIDI"] = round(midi_step(job_id, src, request["start"], request["end"])["seconds"], 3)
        else:
            samples = decode_step(job_id, src, request["model"], request["start"], request["end"])
            timings["decode"] = round(samples["seconds"], 3)
            plan = plan_step(samples)
            chunks["total"] = len(plan)
            _set_state(job_id, state, state="transcribing", chunks_total=len(plan))
            began = clock_step()
            queue = DBOS.retrieve_queue(CHUNK_QUEUE)
            assert queue is not None
            handles = [queue.enqueue(chunk_workflow, job_id, request["model"], samples["rate"], c) for c in plan]
            done = [h.get_result() for h in handles]
            chunks["reused"] = sum(1 for d in done if d["reused"])
            timings["transcribe"] = round(merge_step(job_id, samples, plan)["seconds"] + clock_step() - began, 3)
        _set_state(job_id, state, state="scoring")
        link = src["link"]
        title = request["title"] if request["title"] is not None else (link["title"] if link else request["name"])
        scored = score_step(job_id, src, clean_text(title or "") or "recording", request["score_model"])
        timings["score"] = round(scored.pop("seconds"), 3)
        warnings = ["no notes were found (silence?): the score is one empty bar"] if scored.pop("empty") else []
        _set_state(job_id, state, state="engraving")
        engraved = engrave_step(job_id, request["formats"])
        timings["engrave"] = round(engraved["seconds"], 3)
        timings["page view"] = round(view_step(job_id, engraved["artifacts"], request["start"], request["end"])["seconds"], 3)
        summary = {
            "id": job_id, "state": "done", "source": url or "upload",
            "artifacts": {fmt: f"/jobs/{job_id}/artifacts/{name}" for fmt, name in engraved["artifacts"].items()},
            **scored, "timings_s": timings, "chunks": chunks,
            "link": {k: link[k] for k in ("url", "title", "uploader")} if link else None,
            "warnings": warnings + engraved["warnings"],
        }
        _set_state(job_id, state, state="done", summary=summary)
    except DBOSAwaitedWorkflowCancelledError:
        raise  # the job itself is being cancelled
    except Exception as exc:  # a user's error, or a transient one that outlived its retries
        reason = " ".join(str(exc).split()) or type(exc).__name__
        error = type(exc).__name__ if isinstance(exc, KimiError) else "internal"
        summary = {"id": job_id, "state": "failed", "reason": reason, "error": error}
        _set_state(job_id, state, state="failed", reason=reason, error=error)
        _notify(job_id, request, summary)
        raise KimiError(reason) from None
    _notify(job_id, request, summary)
    return summary


def _notify(job_id: str, request: dict[str, Any], summary: dict[str, Any]) -> None:
    url = request.get("webhook_url")
    if not url:
        return
    try:
        status: int | str = webhook_step(url, job_id, {"type": f"job.{summary['state']}", "data": summary})
    except Exception as exc:  # a webhook that cannot be delivered does not change the job's outcome
        status = " ".join(str(exc).split())
        log(runtime().logger, "webhook failed", logging.WARNING, job=job_id, reason=status)
    DBOS.set_event("webhook", status)


def new_request(source: dict[str, Any], options: dict[str, Any], name: str = "recording") -> dict[str, Any]:
    """A job's request as its workflow gets it (``options``: checked by the API's model)."""
    return {"source": source, "name": name, **options}


def upload_key(job_id: str, data_head: bytes) -> tuple[str, bool]:
    """Where an upload is stored, by what its bytes are (a MIDI file starts ``MThd``), never by its name."""
    midi = data_head.startswith(b"MThd")
    return f"{prefix(job_id)}/input/upload{'.mid' if midi else '.bin'}", midi


__all__ = ["CHUNK_QUEUE", "JOB_QUEUE", "JOB_WORKFLOW", "STATE", "Runtime", "artifact_key", "new_request", "prefix",
           "start", "stop", "submit", "upload_key"]
