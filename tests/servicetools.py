"""Real service processes for the tests: ``kimiwonosete serve`` / ``worker`` started as a user
would, on a free loopback port with a temporary data folder."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SECRET = "whsec_" + base64.b64encode(b"kimiwonosete-test-secret-32-byte").decode()
STARTUP_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One ``kimiwonosete serve`` (or ``worker``) process, its own session (so a kill reaches its pool
    workers too), its stderr (the event log) in a file."""

    def __init__(self, data_dir: Path, *args: str, command: str = "serve", env: dict[str, str] | None = None) -> None:
        self.data_dir, self.args, self.command = data_dir, list(args), command
        self.env = {**os.environ, "KIMIWONOSETE_WEBHOOK_SECRET": SECRET, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self) -> Service:
        log = self.data_dir.parent / f"{self.data_dir.name}-{self.command}-{len(self.logs)}.log"
        self.logs.append(log)
        where = ["--host", "127.0.0.1", "--port", str(self.port)] if self.command == "serve" else []
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kimiwonosete", self.command, *where, "--data-dir", str(self.data_dir),
                 "--log-format", "json", *self.args],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env, start_new_session=True)
        if self.command == "serve":
            self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}): {self.log_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not start: " + self.log_text()[-3000:])

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def events(self, run: int | None = None) -> list[dict[str, Any]]:
        """The JSON event lines of every run (or of run ``run``)."""
        paths = self.logs if run is None else [self.logs[run]]
        found = []
        for path in paths:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    try:
                        found.append(json.loads(line))
                    except ValueError:
                        pass
        return found

    def kill(self) -> None:
        """``kill -9`` of the process and everything it started."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # pool workers left behind, if any
            except ProcessLookupError:
                pass

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kw)


def wait_done(client: httpx.Client, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    """The job once it has ended (done, failed or cancelled)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").raise_for_status().json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end: {job}")


