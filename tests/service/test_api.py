"""The API of a real ``kimiwonosete serve`` (SQLite, a folder store, the link policy on, an API
key): uploads to artifacts, events, idempotent retries, bad input, listing, deletion, metrics,
and 20 jobs at once."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import kimiwonosete
from kimiwonosete.pipeline.stages import FORMATS
from servicetools import Service, wait_done

KEY = "test-key-1"
STATES = ("queued", "downloading", "decoding", "transcribing", "scoring", "engraving", "done")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("api") / "data", "--workers", "2", "--api-key", KEY,
                      "--max-upload-mb", "1", "--rate-limit", "1000", env={"KIMIWONOSETE_ALLOW_PRIVATE_URLS": ""})
    service.start()
    yield service
    service.stop()


@pytest.fixture()
def client(server: Service) -> Iterator[httpx.Client]:
    with server.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _upload(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    with open(path, "rb") as fh:
        return client.post("/jobs", files={"file": (path.name, fh, "application/octet-stream")}, data=fields)


def test_an_uploaded_midi_performance_becomes_every_format(client: httpx.Client, minuet_mid: Path, tmp_path: Path,
                                                           server: Service) -> None:
    posted = _upload(client, minuet_mid, title='Menuet #(system "x") }')
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    assert posted.headers["location"] == f"/jobs/{job_id}" and posted.json()["state"] in STATES
    # The event stream follows the job to its end, the states in order.
    seen = []
    with client.stream("GET", f"/jobs/{job_id}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        for line in events.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["state"])
    assert seen[-1] == "done" and seen == sorted(seen, key=STATES.index)
    job = client.get(f"/jobs/{job_id}").json()
    assert job["state"] == "done" and set(job["artifacts"]) == set(FORMATS)
    assert job["summary"]["notes"] == 47 and job["summary"]["time_signature"] == "3/4"
    assert set(job["timings_s"]) == {"read MIDI", "score", "engrave", "page view"}
    # The same files as the Python API makes of the same input.
    here = kimiwonosete.transcribe(minuet_mid, tmp_path, title='Menuet #(system "x") }')
    types = {"pdf": "application/pdf", "musicxml": "application/vnd.recordare.musicxml+xml", "mid": "audio/midi",
             "performance": "audio/midi", "ly": "text/x-lilypond"}
    for fmt, link in job["artifacts"].items():
        got = client.get(link)
        assert got.status_code == 200 and got.headers["content-type"].startswith(types[fmt])
        if fmt == "pdf":
            assert got.content.startswith(b"%PDF")
        else:
            assert got.content == here.artifacts[fmt].read_bytes(), fmt
    assert 'filename="Menuet_system_x.pdf"' in client.get(job["artifacts"]["pdf"]).headers["content-disposition"]
    assert client.get(f"/jobs/{job_id}/artifacts/minuet.pdf").status_code == 404
    assert client.get(f"/jobs/{job_id}/artifacts/..%2F..%2Fjobs.sqlite").status_code == 404
    lines = [e for e in server.events() if e.get("job") == job_id]
    assert [e["event"] for e in lines][0] == "job queued" and lines[-1]["event"] == "job done"


def test_every_endpoint_but_health_needs_the_key(server: Service) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/health").status_code == 200
        for method, path in (("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/x"), ("GET", "/metrics"),
                             ("DELETE", "/jobs/x")):
            assert anonymous.request(method, path).status_code == 401, path
        assert anonymous.get("/jobs", headers={"X-API-Key": "wrong"}).status_code == 401
        assert anonymous.get("/jobs", headers={"X-API-Key": KEY}).status_code == 200
        # The web page's cookie (percent-encoded) opens what a browser fetches by itself, GET and
        # HEAD only: making or deleting a job needs the key in a header.
        cookie = {"Cookie": f"kimiwonosete-key={urllib.parse.quote(KEY, safe='')}"}
        assert anonymous.get("/jobs", headers=cookie).status_code == 200
        assert anonymous.get("/jobs", headers={"Cookie": "kimiwonosete-key=wrong"}).status_code == 401
        assert anonymous.post("/jobs", json={"url": "https://x.org/a.mp3"}, headers=cookie).status_code == 401
        assert anonymous.delete("/jobs/x", headers=cookie).status_code == 401


def test_a_retried_post_with_an_idempotency_key_is_the_same_job(client: httpx.Client, minuet_mid: Path) -> None:
    first = _upload(client, minuet_mid, formats="mid", title="Once")
    key = {"Idempotency-Key": "order-42"}
    with open(minuet_mid, "rb") as fh:
        data = fh.read()
    one = client.post("/jobs", files={"file": ("minuet.mid", data)}, data={"formats": "mid"}, headers=key)
    two = client.post("/jobs", files={"file": ("minuet.mid", data)}, data={"formats": "mid"}, headers=key)
    assert one.status_code == 202 and two.status_code == 200
    assert one.json()["id"] == two.json()["id"] != first.json()["id"]
    other = client.post("/jobs", files={"file": ("minuet.mid", data)}, data={"formats": "mid,ly"}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert wait_done(client, one.json()["id"])["state"] == "done"
    ids = [j["id"] for j in client.get("/jobs", params={"limit": 100}).json()["jobs"]]
    assert ids.count(one.json()["id"]) == 1


def test_bad_links_non_audio_and_oversized_uploads_end_with_their_reason(client: httpx.Client, tmp_path: Path,
                                                                          server: Service) -> None:
    before = len(client.get("/jobs", params={"limit": 100}).json()["jobs"])
    refused = client.post("/jobs", json={"url": "file:///etc/passwd"})
    assert refused.status_code == 422 and "only http and https" in refused.json()["detail"]
    assert client.post("/jobs", json={"url": "https://x.org/a", "youtube_url": "https://x.org/b"}).status_code == 422
    assert client.post("/jobs", json={"url": "https://x.org/a", "formats": ["gif"]}).status_code == 422
    assert client.post("/jobs", json={"url": "https://x.org/a", "start": 10, "end": 5}).status_code == 422
    hook = client.post("/jobs", json={"url": "https://x.org/a", "webhook_url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 422 and "loopback" in hook.json()["detail"]
    # A link to this machine is refused where the fetch would connect (the policy is on).
    private = client.post("/jobs", json={"youtube_url": "http://127.0.0.1:9/piece.wav", "model": "basic-pitch"})
    assert private.status_code == 202
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 200)
    not_audio = _upload(client, text)
    assert not_audio.status_code == 202
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes(1_500_000))
    too_big = _upload(client, big)
    assert too_big.status_code == 413 and "1 MB" in too_big.json()["detail"]
    # No Content-Length (chunked): cut off all the same, once past the cap.
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    chunks = (head if i == 0 else b"x" * 65536 for i in range(40))
    streamed = client.post("/jobs", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert _upload(client, empty).status_code == 422
    failed = wait_done(client, private.json()["id"])
    assert failed["state"] == "failed" and "private, loopback" in failed["reason"] and failed["error"] == "LinkError"
    failed = wait_done(client, not_audio.json()["id"])
    assert failed["state"] == "failed" and failed["reason"].startswith("the upload") and "/" not in failed["reason"]
    after = client.get("/jobs", params={"limit": 100}).json()["jobs"]
    assert len(after) == before + 2  # the refused requests made no job
    assert not (server.data_dir / "store" / "jobs").exists() or \
        len(list((server.data_dir / "store" / "jobs").iterdir())) == len(
            [j for j in after if j["source"] == "upload"])
    metrics = client.get("/metrics").text
    assert 'kimiwonosete_job_failures{reason="LinkError"} 1' in metrics


def test_jobs_are_listed_newest_first_and_deleted(client: httpx.Client, minuet_mid: Path, server: Service) -> None:
    ids = [_upload(client, minuet_mid, formats="mid").json()["id"] for _ in range(3)]
    listed = client.get("/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in listed["jobs"]] == ids[::-1][:2] and listed["next"] == "/jobs?limit=2&offset=2"
    assert client.get(listed["next"]).json()["jobs"][0]["id"] == ids[0]
    wait_done(client, ids[0])
    assert (server.data_dir / "store" / "jobs" / ids[0]).is_dir()
    assert client.delete(f"/jobs/{ids[0]}").status_code == 204
    assert client.get(f"/jobs/{ids[0]}").status_code == 404 and client.delete(f"/jobs/{ids[0]}").status_code == 404
    assert not (server.data_dir / "store" / "jobs" / ids[0]).exists()


def test_twenty_jobs_submitted_at_once_all_finish(client: httpx.Client, minuet_mid: Path, server: Service) -> None:
    data = minuet_mid.read_bytes()
    ids: list[str] = []
    errors: list[str] = []

    def submit() -> None:
        with server.client(headers={"Authorization": f"Bearer {KEY}"}) as own:
            answer = own.post("/jobs", files={"file": ("minuet.mid", data)}, data={"formats": "mid,musicxml,ly"})
            (ids if answer.status_code == 202 else errors).append(answer.json().get("id") or answer.text)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(ids)) == 20
    assert [wait_done(client, i)["state"] for i in ids] == ["done"] * 20
    metrics = client.get("/metrics").text
    done = next(line for line in metrics.splitlines() if line.startswith('kimiwonosete_jobs{state="done"}'))
    assert int(done.split()[-1]) >= 20
    assert 'kimiwonosete_queue_depth{queue="kimiwonosete-chunks"} 0' in metrics
