"""Where a chunk's model runs for the service: DBOS steps run in threads, so the compute goes to
a process pool that lasts as long as the server (each worker loads a model once and keeps it), or
to Ray. A pool whose worker died (out of memory, killed) is replaced, and the chunk's step fails
with a transient error that DBOS retries."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Protocol

from kimiwonosete.errors import KimiError
from kimiwonosete.notes import Performance
from kimiwonosete.pipeline.executors import ChunkJob, cpu_count, transcribe_chunk
from kimiwonosete.transcription import Transcriber
from kimiwonosete.transcription.chunks import Chunk


class WorkerDied(RuntimeError):
    """A pool worker died under a chunk: transient (DBOS retries the step a few times)."""


class ChunkPool(Protocol):
    def transcribe(self, job: ChunkJob, chunk: Chunk) -> Performance: ...

    def close(self) -> None: ...


#: In a pool worker process only: its models, by (model, device, threads).
_models: dict[tuple[str, str, int | None], Transcriber] = {}


def _work(job: ChunkJob, chunk: Chunk) -> Performance:
    key = (job.model, job.device, job.threads)
    if key not in _models:
        _models[key] = job.transcriber()
    return transcribe_chunk(_models[key], job.read(chunk), chunk)


class LocalPool:
    """``workers`` spawned processes, each computing with its share of the cores."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.threads = max(1, cpu_count() // workers)
        self._lock = threading.Lock()
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that runs a server's threads can hang.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def transcribe(self, job: ChunkJob, chunk: Chunk) -> Performance:
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(_work, replace(job, threads=self.threads), chunk).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = self._new()
            pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerDied(f"a worker process died transcribing chunk {chunk.index} (out of memory?)") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class RayPool:
    """Ray tasks (a local instance, ``RAY_ADDRESS`` or ``ray://HOST:PORT``); a Ray worker process
    keeps its model between tasks. The chunk's samples are read here and sent with the task, so
    the cluster's nodes need not reach the store."""

    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise KimiError("the ray executor needs Ray: pip install 'kimiwonosete[ray]'") from exc
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False, include_dashboard=False) if address is None else \
                ray.init(address=address, log_to_driver=False)
        self._task = ray.remote(num_cpus=1)(_ray_work)

    def transcribe(self, job: ChunkJob, chunk: Chunk) -> Performance:
        samples = job.read(chunk)
        return self._ray.get(self._task.remote(replace(job, threads=1), chunk, samples))

    def close(self) -> None:
        self._ray.shutdown()


def _ray_work(job: ChunkJob, chunk: Chunk, samples) -> Performance:  # type: ignore[no-untyped-def]
    key = (job.model, job.device, job.threads)
    if key not in _models:
        _models[key] = job.transcriber()
    return transcribe_chunk(_models[key], samples, chunk)


def make_pool(executor: str, workers: int) -> ChunkPool:
    if executor == "local":
        return LocalPool(max(1, workers))
    if executor == "ray":
        return RayPool(None)
    if executor.startswith("ray://"):
        return RayPool(executor)
    raise KimiError(f"unknown executor {executor!r}: choose local, ray or ray://HOST:PORT")
