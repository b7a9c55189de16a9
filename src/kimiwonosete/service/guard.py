"""Access and limits: API keys, a per-client rate limit on submissions, and a cap on a request's
body that holds even when a client sends no (or a false) Content-Length."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from starlette.requests import HTTPConnection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


#: The web page's cookie for its API key. A browser sends no script's headers with what it fetches
#: itself (the players' audio, the event stream, a download link), but it sends a cookie, and
#: unlike a key in the address, a cookie is not written into links, history or downloads. It
#: counts on GET and HEAD only: a request that makes or deletes a job needs the key in a header,
#: which another page cannot make the browser send (the page sets the cookie SameSite=Strict, too).
KEY_COOKIE = "kimiwonosete-key"


def key_of(request: HTTPConnection) -> str | None:
    """The API key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, or on a
    GET or HEAD the page's cookie (:data:`KEY_COOKIE`, percent-encoded by the page)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    given = request.headers.get("x-api-key")
    if given is None and request.scope.get("method") in ("GET", "HEAD") and KEY_COOKIE in request.cookies:
        given = unquote(request.cookies[KEY_COOKIE])
    return given


def allowed(given: str | None, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``keys`` (compared in constant time); anything, if there are none."""
    if not keys:
        return True
    return given is not None and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys)


class RateLimit:
    """A token bucket per client: ``per_minute`` requests a minute, as a burst or spread out.

    >>> limit = RateLimit(2, clock=lambda: 0.0)
    >>> limit.take("a"), limit.take("a"), limit.take("a"), limit.take("b")
    (0.0, 0.0, 30.0, 0.0)
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if ``client`` may go on (a token is taken), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def too_large(max_bytes: int) -> str:
    return f"the upload is larger than this server's {max_bytes / 1e6:g} MB limit"


class TooLarge(BaseException):
    """Raised from the body's stream when it passes the cap. A BaseException so that the app's own
    error handling (which turns an ``Exception`` into a 500) lets it through to :class:`BodyLimit`."""


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is cut off with ``413`` (before it is
    stored anywhere), whether or not it declared its length."""

    def __init__(self, app: ASGIApp, max_bytes: int, slack: int = 64_000) -> None:
        self.app = app
        self.max_bytes = max_bytes + slack  # a multipart form's own bytes around the file
        self.shown = max_bytes

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.shown)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLarge:
            if not started:
                await _too_large(send, self.shown)


async def _too_large(send: Callable[[Message], Awaitable[None]], max_bytes: int) -> None:
    body = json.dumps({"detail": too_large(max_bytes)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
