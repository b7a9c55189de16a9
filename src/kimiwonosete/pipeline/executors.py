"""Where chunks are transcribed: this process, a local process pool, or a Ray cluster.

Every executor loads the model once per worker and yields ``(chunk, performance)`` pairs as
chunks finish; the notes of each chunk do not depend on the executor or the number of workers.
Workers read their chunk straight from the job's store (local) or receive only their chunk's
samples (Ray): the whole recording is never copied around.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from kimiwonosete.errors import KimiError
from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.pipeline.workfolder import Work
from kimiwonosete.transcription import ProgressFn, Transcriber, get_transcriber
from kimiwonosete.transcription.chunks import Chunk

#: ``--executor`` values besides ``ray://HOST:PORT``.
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs: the model and the job's work (its decoded samples, in a store)."""

    model: str
    device: str
    sample_rate: int
    work: Work
    #: torch/onnxruntime threads per worker (``None``: the library's default, all cores)
    threads: int | None = None

    def transcriber(self) -> Transcriber:
        return get_transcriber(self.model, self.device, threads=self.threads)

    def read(self, chunk: Chunk) -> np.ndarray:
        return self.work.read_samples(chunk.start, chunk.end)


def shifted(performance: Performance, seconds: float) -> Performance:
    """``performance`` with every time moved ``seconds`` later (chunk time -> recording time)."""
    return Performance(
        [Note(n.onset + seconds, n.offset + seconds, n.pitch, n.velocity) for n in performance.notes],
        [Pedal(p.onset + seconds, p.offset + seconds) for p in performance.pedals],
        duration=performance.duration + seconds,
    )


def transcribe_chunk(
    transcriber: Transcriber, samples: np.ndarray, chunk: Chunk, progress: ProgressFn | None = None
) -> Performance:
    performance = shifted(transcriber.transcribe(samples, progress), chunk.start / transcriber.sample_rate)
    _give_back_memory()
    return performance


def _give_back_memory() -> None:
    """Return freed heap to the system between chunks. Without it glibc's heap fragments and a
    worker's resident memory grows by ~30 MB a chunk (measured with Transkun: 0.59 GB after the
    first 66 s chunk, 0.74 GB after the sixth; flat at 0.46 GB with this)."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


try:
    _libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
    _libc.malloc_trim  # noqa: B018  (glibc only)
except (OSError, AttributeError):
    _libc = None


class Executor(Protocol):
    def slots(self, job: ChunkJob) -> int:
        """How many chunks of ``job`` it can transcribe at once (its workers)."""
        ...

    def run(
        self, job: ChunkJob, chunks: Sequence[Chunk], workers: int, progress: ProgressFn | None = None
    ) -> Iterator[tuple[Chunk, Performance]]:
        """Transcribe ``chunks`` with ``workers`` workers (at most :meth:`slots`), yielding each as
        it finishes (in any order). ``progress``, if given, follows the model's windows within the
        chunks (executors may ignore it)."""
        ...


def cpu_count() -> int:
    """The cores this process may use (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _in_process(job: ChunkJob, chunks: Sequence[Chunk], progress: ProgressFn | None) -> Iterator[tuple[Chunk, Performance]]:
    """One chunk after another in this process, the model using every core."""
    transcriber = job.transcriber()
    for chunk in chunks:
        yield chunk, transcribe_chunk(transcriber, job.read(chunk), chunk, progress)


_worker: tuple[ChunkJob, Transcriber] | None = None


def _start_worker(job: ChunkJob) -> None:
    global _worker
    _worker = (job, job.transcriber())  # the backend loads its model once, on the first chunk


def _work(chunk: Chunk) -> Performance:
    assert _worker is not None, "worker not started"
    job, transcriber = _worker
    return transcribe_chunk(transcriber, job.read(chunk), chunk)


class LocalExecutor:
    """A pool of up to ``workers`` processes on this machine (default: one per core, or one for a
    GPU), sharing the cores between them and each holding its own model. One worker, or one
    chunk, runs in this process instead."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise KimiError("--workers must be at least 1")
        self.workers = workers

    def slots(self, job: ChunkJob) -> int:
        return self.workers or (1 if job.device == "cuda" else cpu_count())

    def run(
        self, job: ChunkJob, chunks: Sequence[Chunk], workers: int, progress: ProgressFn | None = None
    ) -> Iterator[tuple[Chunk, Performance]]:
        workers = min(workers, self.slots(job), len(chunks))
        if workers <= 1:
            yield from _in_process(job, chunks, progress)
            return
        job = replace(job, threads=max(1, cpu_count() // workers))
        # spawn, not fork: a forked copy of a process that has started torch's threads can hang.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(job,)) as pool:
            pending: dict[Future[Performance], Chunk] = {pool.submit(_work, c): c for c in chunks}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield pending.pop(future), future.result()
            except BrokenProcessPool as exc:
                raise KimiError("a worker process died (out of memory? try fewer --workers); "
                                "finished chunks are kept for --resume") from exc
            finally:
                for future in pending:
                    future.cancel()


class RayExecutor:
    """An actor pool on Ray: a local instance (``address=None``), the cluster named by
    ``RAY_ADDRESS``, or ``ray://HOST:PORT``. Each actor holds a model; the driver sends each actor
    only its chunk's samples, when the actor is free."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers

    def slots(self, job: ChunkJob) -> int:
        # A cluster's size is known only once joined: without --workers, plan for this machine's.
        return self.workers or cpu_count()

    def run(
        self, job: ChunkJob, chunks: Sequence[Chunk], workers: int, progress: ProgressFn | None = None
    ) -> Iterator[tuple[Chunk, Performance]]:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError as exc:
            raise KimiError("the ray executor needs Ray: pip install 'kimiwonosete[ray]'") from exc
        started = not ray.is_initialized()
        if started:
            joining = self.address or os.environ.get("RAY_ADDRESS")
            if joining:
                _check_reachable(joining)
            try:
                quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
                if joining:
                    ray.init(address=joining, **quiet)
                else:
                    ray.init(num_cpus=self.workers or cpu_count(), include_dashboard=False, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise KimiError(f"cannot start or join Ray ({joining or 'local'}): {exc}") from exc
        try:
            gpu = job.device == "cuda"
            cpus = int(ray.available_resources().get("GPU" if gpu else "CPU", 1))
            count = max(1, min(workers, cpus, len(chunks)))
            job = replace(job, threads=1)
            actor = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)(_RayWorker)
            pool = ActorPool([actor.remote(job) for _ in range(count)])
            by_index = {c.index: c for c in chunks}
            # Samples are read when an actor is free, so at most one chunk per actor is in flight.
            results = pool.map_unordered(lambda a, c: a.run.remote(c, job.read(c)), list(chunks))
            for index, performance in results:
                yield by_index[index], performance
        finally:
            if started:
                ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail at once on a cluster address nothing answers at: Ray itself retries for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise KimiError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class _RayWorker:
    def __init__(self, job: ChunkJob) -> None:
        _start_worker(job)

    def run(self, chunk: Chunk, samples: np.ndarray) -> tuple[int, Performance]:
        assert _worker is not None
        return chunk.index, transcribe_chunk(_worker[1], samples, chunk)


def get_executor(name: str = "local", workers: int | None = None) -> Executor:
    """``local``, ``ray`` (a local Ray instance, or ``RAY_ADDRESS``) or ``ray://HOST:PORT``."""
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(None, workers)
    if name.startswith("ray://"):
        return RayExecutor(name, workers)
    raise KimiError(f"unknown executor {name!r}: choose local, ray or ray://HOST:PORT")
