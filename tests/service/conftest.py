"""The service's fixtures: test inputs, and a Postgres server started from Debian's binaries."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimiwonosete.examples import example_midi
from servicetools import free_port


@pytest.fixture(scope="session")
def minuet_mid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("midi") / "minuet.mid"
    example_midi().write(str(path))
    return path


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres server from Debian's ``postgresql`` binaries, in a temporary folder on a free
    loopback port (as the ``postgres`` user when the tests run as root: initdb refuses root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.environ.get("CI"):
            raise AssertionError("Debian's postgresql is missing (scripts/setup.sh installs it)")
        pytest.skip("Debian's postgresql is not installed (scripts/setup.sh installs it)")
    bin_dir = Path(found[-1]).parent
    # In /tmp itself, not below pytest's folders: those are private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="kimiwonosete-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.getuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/kimiwonosete"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
