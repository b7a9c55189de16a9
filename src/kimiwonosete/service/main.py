"""The processes: ``serve`` (the API, and workers unless ``--workers 0``) and ``worker`` (workers
only, on a shared Postgres database and store)."""

from __future__ import annotations

import threading

from kimiwonosete.service import jobs
from kimiwonosete.service.config import ServiceConfig
from kimiwonosete.service.logs import event_logger, log


def serve(config: ServiceConfig, host: str, port: int) -> None:
    """Run the API on ``host:port`` with the job runtime until SIGINT/SIGTERM (uvicorn's)."""
    import uvicorn

    from kimiwonosete.service.api import asgi

    logger = event_logger(config.log_format)
    runtime = jobs.start(config.check(), logger)
    try:
        server = uvicorn.Server(uvicorn.Config(asgi(runtime), host=host, port=port, access_log=False,
                                               log_level="warning", timeout_graceful_shutdown=5))
        log(logger, "listening", url=f"http://{host}:{port}")
        server.run()
    finally:
        jobs.stop()


def work(config: ServiceConfig) -> None:
    """Run workers only, until SIGINT/SIGTERM."""
    import signal

    logger = event_logger(config.log_format)
    if config.embedded:
        from kimiwonosete.errors import KimiError

        raise KimiError("a worker needs a database shared with the API: --database postgresql://USER@HOST/DB "
                        "(SQLite allows one process: `kimiwonosete serve` runs its workers itself)")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    jobs.start(config.check(), logger)
    try:
        stopped.wait()
    finally:
        jobs.stop()
