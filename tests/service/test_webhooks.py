"""A job on a link served on loopback (private links allowed, as for local use), whose end is
told to a webhook receiver on loopback that checks the Standard Webhooks signature; the first
delivery is refused, so the retried one is the one that arrives."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from servicetools import SECRET, Service, wait_done


class Receiver:
    """A webhook receiver: answers 503 to the first delivery, then 200; keeps what it verified."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None: ...

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts += 1
                try:
                    payload = Webhook(SECRET).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    receiver.refused += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                if receiver.attempts == 1:
                    self.send_response(503)  # down for a moment: the step retries
                    self.end_headers()
                    return
                receiver.received.append({"payload": payload, "id": self.headers["webhook-id"]})
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture()
def site(example_flac: Path, tmp_path: Path) -> Iterator[str]:
    shutil.copy(example_flac, tmp_path / "piece.flac")
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: SimpleHTTPRequestHandler(*a, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_link_job_ends_with_a_signed_webhook(site: str, tmp_path: Path) -> None:
    receiver = Receiver()
    server = Service(tmp_path / "data", "--workers", "1", "--allow-private-urls", "--max-duration", "0.2")
    server.start()
    try:
        with server.client() as client:
            # 10 s of the 13 s recording: under the 12 s limit.
            posted = client.post("/jobs", json={"url": f"{site}/piece.flac", "model": "basic-pitch", "end": 10,
                                                "formats": ["mid", "musicxml"], "webhook_url": receiver.url})
            assert posted.status_code == 202, posted.text
            job = wait_done(client, posted.json()["id"])
            assert job["state"] == "done", job
            # Done as soon as its files are, while the webhook waits for its retry (1 s after the
            # refused first delivery): a job's view showed "queued" there.
            assert not receiver.received
            assert job["source"] == f"{site}/piece.flac" and set(job["timings_s"]) >= {"download", "decode", "transcribe"}
            assert job["summary"]["link"]["url"] == f"{site}/piece.flac" and job["summary"]["notes"] > 20
            assert 9 < job["summary"]["duration_s"] <= 10.5
            whole = client.post("/jobs", json={"url": f"{site}/piece.flac", "model": "basic-pitch"}).json()
            failed = wait_done(client, whole["id"])
            assert failed["state"] == "failed" and "over this server's 0.2 min limit" in failed["reason"]
            for _ in range(100):
                if receiver.received:
                    break
                threading.Event().wait(0.1)
        assert receiver.refused == 0 and receiver.attempts == 2  # the job without a webhook sent none
        (hook,) = receiver.received
        assert hook["id"] == f"msg_{job['id']}"
        assert hook["payload"]["type"] == "job.done" and hook["payload"]["data"]["id"] == job["id"]
        assert hook["payload"]["data"]["artifacts"] == job["artifacts"]
        sent = [e for e in server.events() if e["event"] == "webhook sent"]
        assert len(sent) == 1 and sent[0]["status"] == 200
        # A forged signature does not verify.
        body = json.dumps(hook["payload"]).encode()
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(body, {"webhook-id": hook["id"], "webhook-timestamp": "1", "webhook-signature": "v1,xx"})
    finally:
        server.stop()
        receiver.server.shutdown()
