"""Debian's firefox-esr driven over WebDriver BiDi, its own remote protocol, with a few commands.

Playwright drives stock Firefox only through BiDi too (its ``moz-firefox`` channel), but its 1.65
driver opens every context with ``emulation.setMediaFeaturesOverride``, which Firefox ESR 153 does
not know; its own Firefox build cannot be downloaded here, and Selenium needs geckodriver, which
Debian does not package. So the page's Firefox check speaks the protocol itself: start the
browser, open a page, evaluate JavaScript in it. The WebSocket client is ``websockets`` (the
``dev`` extra).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FIREFOX = Path("/usr/bin/firefox-esr")
#: no first-run pages, updates or reports: a quiet browser that only loads what it is sent to
PREFS = {"browser.shell.checkDefaultBrowser": False, "browser.startup.homepage_override.mstone": "ignore",
         "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.reportingpolicy.firstRun": False,
         "app.update.disabledForTesting": True, "browser.aboutwelcome.enabled": False,
         "media.autoplay.default": 0}


class BidiError(AssertionError):
    pass


class Firefox:
    """One headless firefox-esr with a fresh profile, and its first tab."""

    def __init__(self, width: int = 1280, height: int = 800) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="kimiwonosete-firefox-")
        (Path(self.profile.name) / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items()))
        self.proc = subprocess.Popen([str(FIREFOX), "--headless", "--no-remote", "--remote-debugging-port=0",
                                      "--profile", self.profile.name],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self._next = 0
        try:
            self.ws: ClientConnection = connect(self._endpoint() + "/session", max_size=None, open_timeout=30)
            self.version = self.send("session.new", {"capabilities": {}})["capabilities"]["browserVersion"]
            self.context = self.send("browsingContext.getTree", {})["contexts"][0]["context"]
            self.send("browsingContext.setViewport",
                      {"context": self.context, "viewport": {"width": width, "height": height}})
        except BaseException:
            self.close()  # no browser left running behind a failed start
            raise

    def _endpoint(self, timeout_s: float = 60) -> str:
        """The WebSocket address Firefox prints once its remote agent listens."""
        found: list[str] = []
        lines: list[str] = []

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                lines.append(line)
                if match := re.search(r"WebDriver BiDi listening on (ws://\S+)", line):
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not found:
            raise BidiError("firefox-esr did not start its remote agent: " + "".join(lines)[-2000:])
        # Firefox goes on writing to stderr: read on, so that it never blocks on a full pipe.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # type: ignore[union-attr]
        return found[0]

    def send(self, method: str, params: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
        self._next += 1
        self.ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != self._next:
                continue  # an event: none is subscribed to, but some come anyway
            if message.get("type") == "error":
                raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    def goto(self, url: str) -> None:
        self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited), as JSON."""
        answer = self.send("script.evaluate", {"expression": f"(async () => JSON.stringify(await ({expression})))()",
                                               "target": {"context": self.context}, "awaitPromise": True})
        if answer["type"] != "success":
            raise BidiError(f"{expression}: {answer.get('exceptionDetails', {}).get('text')}")
        value = answer["result"].get("value")
        return None if value is None else json.loads(value)

    def wait_for(self, expression: str, timeout_s: float = 60) -> Any:
        """The expression's value once it is truthy."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BidiError(f"still false after {timeout_s:.0f} s: {expression}")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        data = self.send("browsingContext.captureScreenshot", {"context": self.context, "origin": "document"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.send("browser.close", {}, timeout_s=10)
        except Exception:  # the browser may be gone already; it is killed below either way
            pass
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.profile.cleanup()
