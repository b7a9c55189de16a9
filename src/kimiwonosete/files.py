"""Atomic file output: artifacts appear under their final name complete, or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kimiwonosete.errors import OutputError


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/kimiwonosete`` (``~/.cache/kimiwonosete`` by default): work folders and
    downloads live below it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kimiwonosete"


def _create_temp(final: Path) -> Path:
    """An empty, new temporary file beside ``final`` (its folder made if missing)."""
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(f"{final.parent}: cannot write here ({exc.strerror or exc})") from exc
    return tmp


def check_writable(folder: Path) -> None:
    """Make ``folder`` if needed and prove a file can be created there (an OutputError if not)."""
    _create_temp(Path(folder) / "kimiwonosete-probe").unlink()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    The temporary file is created with the usual permissions (``0o666`` less the umask) and
    synced to disk before the rename. OS errors become one-line :class:`OutputError`.

    >>> with atomic_path(Path("out.ly")) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("...")  # doctest: +SKIP
    """
    final = Path(final)
    tmp = _create_temp(final)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        raise OutputError(f"{final}: cannot write ({exc.strerror or exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
