"""Links as input: the best audio stream of a page yt-dlp supports (YouTube first), or a direct
link to a media file, fetched with the yt-dlp Python API, with limits and one-line errors.

A server must not let users reach its own network through a link: :class:`LinkPolicy` refuses
private, loopback and link-local addresses. It is checked where every connection is made (after
DNS resolution, so also for each redirect and for a name that resolves to a private address),
not on the link's text alone: a fetch under such a policy runs in a process of its own, whose
name resolution the policy guards, so the check never touches the rest of the program (a
server's own connections from other threads: its database, storage, webhooks).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import json
import multiprocessing
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from kimiwonosete.errors import InputError, KimiError
from kimiwonosete.files import cache_home

SCHEMES = ("http", "https")
MAX_DURATION_S = 3600.0
MAX_BYTES = 2_000_000_000
SOCKET_TIMEOUT_S = 30.0
DOWNLOAD_TIMEOUT_S = 1800.0
MEDIA_NAME = "media"  # the downloaded file: media.<ext>, beside info.json
_LINK = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


class LinkError(KimiError):
    """A link that cannot be fetched (unreachable, refused, not media, too long, ...)."""


def is_link(text: str) -> bool:
    """Whether ``text`` is meant as a link (``scheme:...``) rather than a file's path.

    >>> is_link("https://youtu.be/x"), is_link("file:///etc/passwd"), is_link("music/piece.flac")
    (True, True, False)
    """
    return bool(_LINK.match(text)) and not Path(text).exists()


@dataclass(frozen=True)
class LinkPolicy:
    """Which links may be fetched: http(s) only, and (unless ``allow_private``) only to public
    addresses; ``blocked`` adds networks refused even when public.

    >>> LinkPolicy().check_url("file:///etc/passwd")
    Traceback (most recent call last):
    ...
    kimiwonosete.sources.links.LinkError: file:///etc/passwd: only http and https links are accepted
    """

    allow_private: bool = False
    blocked: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @property
    def checks_addresses(self) -> bool:
        return not self.allow_private or bool(self.blocked)

    def check_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in SCHEMES:
            raise LinkError(f"{url}: only http and https links are accepted")
        if not parts.hostname:
            raise LinkError(f"{url}: the link has no host")

    def check_address(self, host: str, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.blocked) or not (self.allow_private or (ip.is_global and not ip.is_multicast)):
            where = f"{ip} is" if host == str(ip) else f"{host} is at {ip},"  # a bare address is not said twice
            raise RefusedAddress(f"{where} a private, loopback or reserved address: links there are refused")


#: What the command line uses: any address (a user may fetch from their own network).
OPEN = LinkPolicy(allow_private=True)


class RefusedAddress(OSError):
    """Raised inside yt-dlp's connection code: the policy refused where a connection would go."""


T = TypeVar("T")


def _checked_getaddrinfo(policy: LinkPolicy, refused: list[str], resolve: Callable[..., Any], host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
    """``socket.getaddrinfo`` that lets ``policy`` veto every address it returns. Both of yt-dlp's
    HTTP stacks (urllib, requests/urllib3) connect only to addresses from here."""
    found = resolve(host, port, *args, **kwargs)
    for *_, sockaddr in found:
        try:
            policy.check_address(str(host), sockaddr[0])
        except RefusedAddress as exc:
            refused.append(str(exc))
            raise
    return found


def _guarded(policy: LinkPolicy, fn: Callable[..., T], *args: Any) -> T:
    """In a fetch's own process: ``fn(*args, refused)`` with ``policy`` checking every address this
    process resolves (every thread yt-dlp or asyncio starts in it too). The process does nothing
    else, so guarding its ``socket.getaddrinfo`` touches nothing but this fetch."""
    refused: list[str] = []
    socket.getaddrinfo = partial(_checked_getaddrinfo, policy, refused, socket.getaddrinfo)
    return fn(*args, refused)


def _under(policy: LinkPolicy, url: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args, refused)``: here when ``policy`` checks no addresses, else in a new process
    under it (errors come back as raised there)."""
    if not policy.checks_addresses:
        return fn(*args, [])
    # spawn, not fork: a fork of a process running other threads (a server's) can hang.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_guarded, policy, fn, *args).result()
        except BrokenProcessPool:
            raise LinkError(f"{url}: the download stopped (its process died)") from None


@dataclass(frozen=True)
class LinkOptions:
    """How links are fetched. ``cache``: a folder keeping downloads by video id (or URL) so that a
    link is downloaded once; ``None`` downloads afresh every time."""

    cookies: Path | None = None
    max_duration_s: float = MAX_DURATION_S
    max_bytes: int = MAX_BYTES
    socket_timeout_s: float = SOCKET_TIMEOUT_S
    download_timeout_s: float = DOWNLOAD_TIMEOUT_S
    cache: Path | None = None
    policy: LinkPolicy = OPEN
    #: seconds of the recording that will be used (``--start``/``--end``), for the length limit
    span: tuple[float, float | None] = (0.0, None)


@dataclass(frozen=True)
class Download:
    """A fetched recording and what its page says about it (untrusted text)."""

    path: Path
    url: str
    title: str
    uploader: str
    duration: float | None
    id: str = ""


def default_cache() -> Path:
    return cache_home() / "downloads"


class _Log:
    """yt-dlp's messages, kept (never printed): the last error explains a failure."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str) -> None:
        self.messages.append(msg)

    info = warning = error = debug


def _reason(message: str) -> str:
    """yt-dlp's error text without its prefixes and advice.

    >>> _reason("ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404>)")
    'HTTP Error 404: Not Found'
    >>> _reason("ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video")
    "Private video. Sign in if you've been granted access to this video"
    """
    text = re.sub(r"^(ERROR:\s*)?(\[[^\]]+\]\s*)?", "", message.strip())
    text = re.sub(r"\s*\(caused by .*$", "", text, flags=re.S)
    text = re.sub(r";\s*please report this issue.*$", "", text, flags=re.S | re.I)
    text = re.sub(r"^Unable to download (webpage|API page|video data):\s*", "", text)
    text = re.sub(r"^[\w-]{6,}:\s+(?=[A-Z])", "", text)  # a leading video id
    text = re.sub(r"<urlopen error (.*)>$", r"\1", text)
    return text.strip() or "the download failed"


def _explain(url: str, message: str, refused: list[str]) -> LinkError:
    if refused:
        return LinkError(f"{url}: {refused[0]}")
    reason = _reason(message)
    lowered = reason.lower()
    if "unsupported url" in lowered:
        return LinkError(f"{url}: no audio or video found at this link")
    if "timed out" in lowered or "timeout" in lowered:
        return LinkError(f"{url}: the server did not answer in time ({reason})")
    if any(s in lowered for s in ("name or service not known", "connection refused", "no route", "failed to resolve",
                                  "temporary failure in name resolution", "network is unreachable")):
        return LinkError(f"{url}: cannot reach the server ({reason})")
    return LinkError(f"{url}: {reason}")


def _check_cookies(path: Path) -> None:
    from http.cookiejar import LoadError

    from yt_dlp.cookies import YoutubeDLCookieJar

    if not path.is_file():
        raise InputError(f"{path}: no such cookies file")
    jar = YoutubeDLCookieJar(str(path))
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            jar.load(ignore_discard=True, ignore_expires=True)
    except (LoadError, OSError, UnicodeDecodeError, ValueError):
        raise InputError(f"{path}: not a Netscape-format cookies file (export one with a browser extension or "
                         "yt-dlp --cookies-from-browser)") from None


@contextlib.contextmanager
def _private_cookies(path: Path | None) -> Iterator[str | None]:
    """A private copy of the cookies file: yt-dlp writes cookies back when it closes, and the
    user's file must stay as it is."""
    if path is None:
        yield None
        return
    _check_cookies(path)
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-cookies-") as tmp:
        copy = Path(tmp) / "cookies.txt"
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o600)
        yield str(copy)


def _ydl_options(options: LinkOptions, log: _Log, cookiefile: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "logger": log, "quiet": True, "no_warnings": True, "noprogress": True, "color": "never",
        "format": "bestaudio/best", "noplaylist": True,
        "socket_timeout": options.socket_timeout_s,
        "retries": 1, "fragment_retries": 1, "extractor_retries": 0, "file_access_retries": 0,
        "max_filesize": options.max_bytes,
        "cookiefile": cookiefile, "cachedir": False,
        # Native downloaders only: ffmpeg as a downloader would open connections the policy cannot see.
        "hls_prefer_native": True, "external_downloader": {}, "proxy": "" if options.policy.checks_addresses else None,
        "updatetime": False, "overwrites": True,
        **extra,
    }


def _key(info: dict[str, Any], url: str) -> str:
    """Cache key: the site's video id where it has one, else the link itself."""
    extractor = str(info.get("extractor_key") or "")
    ident = str(info.get("id") or "")
    basis = f"{extractor}:{ident}" if extractor and extractor.lower() != "generic" and ident else f"url:{url}"
    return hashlib.sha256(basis.encode()).hexdigest()[:24]


def check_length(url: str, duration: float | None, options: LinkOptions) -> None:
    """Refuse a recording whose part to be used (``options.span``) is over the length limit.

    >>> check_length("https://x", 7200.0, LinkOptions(span=(600.0, 1200.0)))  # 10 of its 120 min
    >>> check_length("https://x", 7200.0, LinkOptions())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kimiwonosete.sources.links.LinkError: https://x: the recording is 120.0 min long, over the 60 min limit (...)
    """
    if duration is None:
        return
    start, end = options.span
    used = (min(end, duration) if end is not None else duration) - start
    if used > options.max_duration_s:
        raise LinkError(f"{url}: the recording is {duration / 60:.1f} min long, over the {options.max_duration_s / 60:g} min "
                        "limit (take part of it with --start/--end, or raise --max-duration)")


def _cached(folder: Path) -> Download | None:
    try:
        meta = json.loads((folder / "info.json").read_text())
        media = next(p for p in folder.glob(f"{MEDIA_NAME}.*") if not p.name.endswith((".part", ".ytdl")))
    except (OSError, ValueError, StopIteration):
        return None
    return Download(media, meta["url"], meta["title"], meta["uploader"], meta["duration"], meta["id"])


def fetch(url: str, options: LinkOptions, into: Path) -> Download:
    """Download the best audio stream of ``url`` into a folder under ``into`` (or find it in
    ``options.cache``) and return it with its metadata. Errors are one-line :class:`LinkError`\\ s.

    The page is read once: its metadata decide (playlist? too long? cached?) before any media
    is downloaded.
    """
    options.policy.check_url(url)
    return _under(options.policy, url, _download, url, options, into)


def _download(url: str, options: LinkOptions, into: Path, refused: list[str]) -> Download:
    import yt_dlp

    root = options.cache if options.cache is not None else into
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    started = time.monotonic()

    def limit(progress: dict[str, Any]) -> None:
        size = max(progress.get("downloaded_bytes") or 0, progress.get("total_bytes") or 0)
        if size > options.max_bytes:
            raise LinkError(f"{url}: the download is larger than the {options.max_bytes / 1e6:.0f} MB limit")
        if time.monotonic() - started > options.download_timeout_s:
            raise LinkError(f"{url}: the download took longer than {options.download_timeout_s:.0f} s and was stopped")

    log = _Log()
    try:
        with _private_cookies(options.cookies) as cookiefile:
            extra = {"outtmpl": str(work / f"{MEDIA_NAME}.%(ext)s"), "progress_hooks": [limit], "extract_flat": "in_playlist"}
            try:
                with yt_dlp.YoutubeDL(_ydl_options(options, log, cookiefile, **extra)) as ydl:
                    info = ydl.extract_info(url, download=False)
                    if info.get("_type") in ("playlist", "multi_video"):
                        raise LinkError(f"{url}: this is a playlist or channel ({len(info.get('entries') or [])} items); "
                                        "give one video's link, or --playlist to make a score of each")
                    check_length(url, info.get("duration"), options)
                    final = root / _key(info, url)
                    if options.cache is not None and (hit := _cached(final)) is not None:
                        return hit
                    ydl.process_ie_result(info, download=True)
            except yt_dlp.utils.YoutubeDLError as exc:
                cause = exc.exc_info[1] if getattr(exc, "exc_info", None) else None
                if isinstance(cause, LinkError):
                    raise cause from None
                raise _explain(url, str(exc), refused) from None
        if not any(p.name.startswith(f"{MEDIA_NAME}.") and not p.name.endswith((".part", ".ytdl")) for p in work.iterdir()):
            if any("larger than max-filesize" in m for m in log.messages):
                raise LinkError(f"{url}: the download is larger than the {options.max_bytes / 1e6:.0f} MB limit")
            raise LinkError(f"{url}: nothing was downloaded ({_reason(log.messages[-1]) if log.messages else 'no media'})")
        meta = {"url": info.get("webpage_url") or url, "title": str(info.get("title") or info.get("id") or ""),
                "uploader": str(info.get("uploader") or info.get("channel") or ""),
                "duration": info.get("duration"), "id": str(info.get("id") or "")}
        (work / "info.json").write_text(json.dumps(meta))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    download = _cached(final)
    assert download is not None
    return download


def playlist_links(url: str, options: LinkOptions) -> list[tuple[str, str]]:
    """(link, title) of each item of a playlist or channel (a single video: just ``url``)."""
    options.policy.check_url(url)
    return _under(options.policy, url, _playlist, url, options)


def _playlist(url: str, options: LinkOptions, refused: list[str]) -> list[tuple[str, str]]:
    import yt_dlp

    log = _Log()
    with _private_cookies(options.cookies) as cookiefile:
        try:
            opts = _ydl_options(options, log, cookiefile, extract_flat="in_playlist", noplaylist=False)
            with yt_dlp.YoutubeDL(opts) as ydl:
                info = ydl.extract_info(url, download=False)
        except yt_dlp.utils.YoutubeDLError as exc:
            raise _explain(url, str(exc), refused) from None
    if info.get("_type") not in ("playlist", "multi_video"):
        return [(url, str(info.get("title") or ""))]
    entries = [(e.get("url") or e.get("webpage_url"), str(e.get("title") or "")) for e in info.get("entries") or []]
    return [(link, title) for link, title in entries if link]
