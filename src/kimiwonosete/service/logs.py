"""The service's event log: one line per job, stage and chunk event, as JSON with
``--log-format json``. A logger of its own with its own handler: the root logger (and anything
else the host program configured) is left alone."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER = "kimiwonosete.service"


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(), "event": record.getMessage(), **getattr(record, "fields", {})}
        return json.dumps(line, default=str)


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        return f"kimiwonosete: {record.getMessage()} {fields}".rstrip()


def event_logger(fmt: str = "text", stream: Any = None) -> logging.Logger:
    """The service's logger, its one handler writing ``fmt`` (``text`` or ``json``) to ``stream``
    (default stderr); it does not pass records on to the root logger."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Json() if fmt == "json" else _Text())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def log(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": fields})
