"""Scaled out: an API-only ``serve --workers 0`` and a ``kimiwonosete worker`` sharing a Postgres
database (Debian's, started by the fixture) and an S3 store (moto's server through s3fs); the
worker does the job, the API hands out a presigned link to each artifact."""

from __future__ import annotations

from pathlib import Path

import httpx

from helpers import run_cli
from servicetools import Service, wait_done


def test_a_worker_needs_a_shared_database(tmp_path: Path) -> None:
    done = run_cli("worker", "--data-dir", tmp_path, timeout=120)
    assert done.returncode == 1 and "a worker needs a database shared with the API" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_api_and_a_worker_share_postgres_and_s3(postgres: str, s3_url: tuple[str, dict], minuets_flac: Path,
                                                   tmp_path: Path) -> None:
    url, options = s3_url
    env = {"AWS_ACCESS_KEY_ID": options["key"], "AWS_SECRET_ACCESS_KEY": options["secret"],
           "AWS_ENDPOINT_URL": options["endpoint_url"], "AWS_DEFAULT_REGION": "us-east-1"}
    shared = ["--database", postgres, "--storage", f"{url}/{tmp_path.name}", "--chunk-seconds", "24"]
    api = Service(tmp_path / "api", "--workers", "0", *shared, env=env)
    worker = Service(tmp_path / "worker", "--workers", "2", *shared, command="worker", env=env)
    api.start()
    worker.start()
    try:
        with api.client() as client, open(minuets_flac, "rb") as fh:
            posted = client.post("/jobs", files={"file": ("minuets.flac", fh)}, data={"model": "basic-pitch"})
            assert posted.status_code == 202, posted.text
            job = wait_done(client, posted.json()["id"], timeout_s=240)
            assert job["state"] == "done", (job, worker.log_text()[-3000:])
            assert job["chunks"] == {"done": 2, "total": 2}
            for fmt, link in job["artifacts"].items():
                answer = client.get(link)
                assert answer.status_code == 307, fmt
                presigned = answer.headers["location"]
                assert presigned.startswith(options["endpoint_url"]) and "Signature" in presigned
                data = httpx.get(presigned).raise_for_status().content
                assert data.startswith(b"%PDF" if fmt == "pdf" else b"MThd" if fmt in ("mid", "performance") else b"")
                assert len(data) > 100
        # The worker ran every step; the API process ran none.
        ran = {e["event"] for e in worker.events() if e.get("job") == job["id"]}
        assert {"job transcribing", "chunk done", "job done"} <= ran
        assert not [e for e in api.events() if e.get("job") == job["id"] and e["event"] != "job queued"]
    finally:
        worker.stop()
        api.stop()


def test_chunks_go_to_ray_with_executor_ray(minuets_flac: Path, tmp_path: Path) -> None:
    """``serve --executor ray``: a local Ray instance computes the chunks (its worker processes hold
    the model), the job's steps stay in the server."""
    server = Service(tmp_path / "data", "--workers", "2", "--executor", "ray", "--chunk-seconds", "24")
    server.start()
    try:
        with server.client() as client, open(minuets_flac, "rb") as fh:
            posted = client.post("/jobs", files={"file": ("minuets.flac", fh)}, data={"model": "basic-pitch", "formats": "mid"})
            job = wait_done(client, posted.json()["id"], timeout_s=240)
            assert job["state"] == "done", (job, server.log_text()[-3000:])
            assert job["chunks"] == {"done": 2, "total": 2} and job["summary"]["notes"] > 150
            assert client.get(job["artifacts"]["mid"]).content.startswith(b"MThd")
        assert "Started a local Ray instance" in server.log_text()
        assert sorted(e["chunk"] for e in server.events() if e["event"] == "chunk done") == [0, 1]
    finally:
        server.stop()
