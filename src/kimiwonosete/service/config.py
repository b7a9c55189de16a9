"""What a server or worker is told: one frozen object handed to every part (no module state)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from kimiwonosete.engrave.lilypond import Limits
from kimiwonosete.errors import KimiError
from kimiwonosete.transcription.chunks import CHUNK_S

#: ``KIMIWONOSETE_ALLOW_PRIVATE_URLS=1`` lets links (and webhooks) reach private addresses.
ALLOW_PRIVATE_ENV = "KIMIWONOSETE_ALLOW_PRIVATE_URLS"
#: Comma-separated API keys; any of them opens every endpoint but /health.
API_KEYS_ENV = "KIMIWONOSETE_API_KEYS"
#: The webhook signing secret (``whsec_`` + base64); default: one made once in the data folder.
WEBHOOK_SECRET_ENV = "KIMIWONOSETE_WEBHOOK_SECRET"
MB = 1_000_000


@dataclass(frozen=True)
class ServiceConfig:
    data_dir: Path
    #: the DBOS system database: ``sqlite:///…`` (default: a file in ``data_dir``) or ``postgresql://…``
    database_url: str | None = None
    #: the store: a folder or ``s3://bucket/prefix`` (default: ``data_dir/store``)
    storage_url: str | None = None
    #: s3fs options (endpoint, keys) for an ``s3://`` store; usually from ``AWS_*`` variables instead
    storage_options: dict = field(default_factory=dict)
    #: chunk workers in this process' pool (0: this process runs no jobs, the API only)
    workers: int = 1
    #: jobs in progress at once per process (each mostly waits for its chunks)
    job_slots: int = 2
    executor: str = "local"
    api_keys: tuple[str, ...] = ()
    allow_private_urls: bool = False
    max_upload_bytes: int = 200 * MB
    max_duration_s: float = 3600.0
    #: job submissions per client per minute (0: no limit)
    rate_limit_per_min: int = 30
    chunk_s: float = CHUNK_S
    webhook_secret: str | None = None
    log_format: str = "text"
    executor_id: str = field(default_factory=lambda: f"serve-{socket.gethostname()}")
    #: what one LilyPond run may use (CPU time, memory, output size)
    lilypond: Limits = field(default_factory=Limits)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'jobs.sqlite').resolve()}"

    @property
    def storage(self) -> str:
        return self.storage_url or str((self.data_dir / "store").resolve())

    @property
    def embedded(self) -> bool:
        return self.database.startswith("sqlite")

    def check(self) -> ServiceConfig:
        if self.workers < 0 or self.job_slots < 1:
            raise KimiError("--workers must be 0 or more")
        if self.chunk_s <= 0 or self.max_upload_bytes <= 0 or self.max_duration_s <= 0:
            raise KimiError("the chunk length, upload cap and duration cap must be positive")
        if not self.database.startswith(("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")):
            raise KimiError(f"--database {self.database}: give sqlite:///FILE or postgresql://USER@HOST/DB")
        if self.log_format not in ("text", "json"):
            raise KimiError("--log-format: text or json")
        return self


def env_flag(name: str, environ: dict[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get(name, "").strip().lower() in ("1", "true", "yes")
