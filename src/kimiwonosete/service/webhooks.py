"""The webhook a job sends when it ends: a POST of its summary, signed as Standard Webhooks say
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 with the server's
secret), to a URL the link policy allows (checked on the addresses the name resolves to, and no
redirects followed, so a redirect cannot lead it into the server's network)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kimiwonosete.sources.links import LinkError, LinkPolicy, RefusedAddress

TIMEOUT_S = 10.0


class WebhookRefused(LinkError):
    """The webhook's URL is not allowed: never retried."""


def load_secret(data_dir: Path, given: str | None) -> str:
    """``given``, or the secret kept in ``data_dir/webhook-secret`` (made there on first use, 0600)."""
    if given:
        return given
    path = data_dir / "webhook-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        path.touch(mode=0o600)
        path.write_text(secret)
    return path.read_text().strip()


def check_url(url: str, policy: LinkPolicy) -> None:
    """Refuse a webhook URL that is not http(s), or whose host resolves to a refused address."""
    try:
        policy.check_url(url)
    except LinkError as exc:
        raise WebhookRefused(f"webhook: {exc}") from None
    if not policy.checks_addresses:
        return
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        found = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebhookRefused(f"webhook: {url}: cannot resolve {host} ({exc.strerror})") from None
    for *_, sockaddr in found:
        try:
            policy.check_address(host, sockaddr[0])
        except RefusedAddress as exc:
            raise WebhookRefused(f"webhook: {url}: {exc}") from None


def send(url: str, message_id: str, payload: dict[str, Any], secret: str, policy: LinkPolicy) -> int:
    """POST ``payload`` to ``url``, signed; the status code. A refused URL raises
    :class:`WebhookRefused`; a failed delivery (no answer, not 2xx) raises ``OSError`` (retried)."""
    import httpx
    from standardwebhooks import Webhook

    check_url(url, policy)
    body = json.dumps(payload, separators=(",", ":"))
    now = datetime.now(timezone.utc)
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
        "user-agent": "kimiwonosete-webhook",
    }
    try:
        response = httpx.post(url, content=body.encode(), headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise OSError(f"webhook {url}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise OSError(f"webhook {url}: answered {response.status_code}")
    return response.status_code
