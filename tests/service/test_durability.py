"""``kill -9`` of a server mid-transcription: restarted, it resumes the job from its last finished
chunk (the finished chunks are not computed again) and makes the same files as a run that was
never interrupted."""

from __future__ import annotations

import re
import time
from pathlib import Path

from servicetools import Service, wait_done

CHUNKS = 8  # the 47 s recording in 6 s chunks


def _normalized(name: str, data: bytes) -> bytes:
    """A PDF without what Ghostscript stamps on every run (its dates and document id)."""
    if not name.endswith(".pdf"):
        return data
    data = re.sub(rb"/(CreationDate|ModDate)\([^)]*\)", b"", data)
    data = re.sub(rb"<xmp:(CreateDate|ModifyDate|MetadataDate)>[^<]*<", b"<", data)
    # The trailer's /ID pair, written as hex or as literal (binary) strings, up to the ">>" closing it.
    data = re.sub(rb"/ID\s*\[.*?\]\s*(?=>>)", b"", data, flags=re.S)
    return re.sub(rb"uuid:[0-9a-f-]+", b"", data)


def test_a_killed_server_resumes_its_job_from_the_last_finished_chunk(minuets_flac: Path,
                                                                        tmp_path: Path) -> None:
    server = Service(tmp_path / "data", "--workers", "1", "--chunk-seconds", "6")
    server.start()
    try:
        with server.client() as client, open(minuets_flac, "rb") as fh:
            job_id = client.post("/jobs", files={"file": ("minuets.flac", fh)}, data={"model": "basic-pitch"}).json()["id"]
        chunks = tmp_path / "data" / "store" / "jobs" / job_id / "work" / "chunks"
        deadline = time.monotonic() + 240
        while not (chunks.is_dir() and any(chunks.glob("*.json"))):
            assert time.monotonic() < deadline, "no chunk was finished in time"
            time.sleep(0.05)
        server.kill()
        kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunks.glob("*.json")}
        assert 1 <= len(kept) < CHUNKS, f"killed too late: {len(kept)} chunks were done"

        server.start()
        with server.client() as client:
            job = wait_done(client, job_id)
            assert job["state"] == "done", job
            assert job["chunks"] == {"done": CHUNKS, "total": CHUNKS}
            # The chunks finished before the kill were neither computed again nor rewritten.
            computed = {e["chunk"] for e in server.events(run=1) if e["event"] == "chunk done" and e["job"] == job_id}
            assert computed == set(range(CHUNKS)) - {int(name[:5]) for name in kept}
            assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunks.glob("*.json") if p.name in kept} == kept
            resumed = {name: client.get(link).content for name, link in job["artifacts"].items()}

            # The same recording, never interrupted: the same files.
            with open(minuets_flac, "rb") as fh:
                again = client.post("/jobs", files={"file": ("minuets.flac", fh)}, data={"model": "basic-pitch"}).json()
            fresh = wait_done(client, again["id"])
            assert fresh["state"] == "done" and fresh["summary"]["chunks"] == {"total": CHUNKS, "reused": 0}
            for name, link in fresh["artifacts"].items():
                assert _normalized(link, client.get(link).content) == _normalized(link, resumed[name]), name
    finally:
        server.stop()


def test_a_deleted_job_stops_and_the_server_goes_on(minuets_flac: Path, tmp_path: Path) -> None:
    server = Service(tmp_path / "data", "--workers", "1", "--chunk-seconds", "6")
    server.start()
    try:
        with server.client() as client, open(minuets_flac, "rb") as fh:
            job_id = client.post("/jobs", files={"file": ("minuets.flac", fh)}, data={"model": "basic-pitch"}).json()["id"]
            deadline = time.monotonic() + 120
            while client.get(f"/jobs/{job_id}").json()["state"] != "transcribing":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert client.delete(f"/jobs/{job_id}").status_code == 204
            assert client.get(f"/jobs/{job_id}").status_code == 404
            time.sleep(3)  # a chunk in flight finishes; nothing else starts
            with open(minuets_flac, "rb") as fh:
                other = client.post("/jobs", files={"file": ("x.flac", fh)}, data={"model": "basic-pitch", "formats": "mid"})
            assert wait_done(client, other.json()["id"])["state"] == "done"
        started = [e for e in server.events() if e.get("job") == job_id and e["event"] == "chunk done"]
        assert len(started) < CHUNKS
        assert not (tmp_path / "data" / "store" / "jobs" / job_id).exists()  # the chunk in flight left nothing
    finally:
        server.stop()
