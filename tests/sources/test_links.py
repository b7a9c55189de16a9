"""Links through yt-dlp against a loopback HTTP server started here: no test reaches the internet.

The server serves real media files made from the example recording by ffmpeg, HTML pages, a
redirect, a server too slow to answer, a file whose Content-Length is huge and a 404.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import run_cli
from kimiwonosete.audio import ffmpeg_exe
from kimiwonosete.sources.links import LinkError, LinkOptions, LinkPolicy, fetch

HOSTILE_TITLE = 'Évocation #(system "touch PWNED") \\header { } "}'
MEDIA = {"piece.wav": [], "piece.mp3": ["-c:a", "libmp3lame"], "piece.webm": ["-c:a", "libopus"],
         "piece.mp4": ["-c:a", "aac"]}


class Handler(SimpleHTTPRequestHandler):
    """Files from the served folder, plus a few special paths."""

    def log_message(self, *args: object) -> None: ...

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect/").replace("%3A", ":"))
            self.end_headers()
        elif path == "/slow.wav":
            time.sleep(4)  # the client has given up by now
            self.close_connection = True
        elif path == "/huge.wav":
            self.send_response(200)
            self.send_header("Content-Type", "audio/x-wav")
            self.send_header("Content-Length", str(50 * 10**9))
            self.end_headers()
            try:
                self.wfile.write(b"RIFF" + b"\0" * 65536)
            except OSError:
                pass
        else:
            super().do_GET()

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def site(example_flac: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    for name, codec in MEDIA.items():
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(example_flac), *codec, str(root / name)],
                       check=True)
    (root / "page.html").write_text("<html><head><title>No media here</title></head><body><p>Hello</p></body></html>")
    escaped = HOSTILE_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    (root / "hostile.html").write_text(f'<html><head><title>{escaped}</title></head><body>'
                                       f'<audio src="piece.webm" controls></audio></body></html>')
    (root / "two.html").write_text('<html><head><title>Two pieces</title></head><body><audio src="piece.wav"></audio>'
                                   '<audio src="piece.mp3"></audio></body></html>')
    (root / "notes.txt").write_text("not audio at all\n" * 100)
    shutil.copy(root / "notes.txt", root / "fake.mp3")  # a text file named and typed as audio
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("name", list(MEDIA))
def test_direct_media_links_download_through_yt_dlp(site: str, name: str, tmp_path: Path) -> None:
    got = fetch(f"{site}/{name}", LinkOptions(), tmp_path)
    assert got.path.is_file() and got.path.stat().st_size > 1000
    assert got.title == "piece" and got.url == f"{site}/{name}"


def test_a_webm_link_becomes_a_pdf(site: str, tmp_path: Path) -> None:
    proc = run_cli("transcribe", f"{site}/piece.webm", "-o", tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["source"] == f"{site}/piece.webm" and summary["link"]["title"] == "piece"
    assert summary["time_signature"] == "3/4" and summary["key"] == "G major"
    assert (tmp_path / "piece.pdf").read_bytes().startswith(b"%PDF")


def test_a_media_link_becomes_a_pdf_with_its_hostile_title_escaped(site: str, tmp_path: Path) -> None:
    proc = run_cli("transcribe", f"{site}/hostile.html", "-o", tmp_path, "--model", "basic-pitch", "--json",
                   "--formats", "pdf,ly,musicxml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["link"]["title"].startswith(HOSTILE_TITLE)  # yt-dlp numbers a page's media: " (1)"
    ly = Path(summary["artifacts"]["ly"]).read_text()
    assert 'title = "Évocation #(system \\"touch PWNED\\") \\\\header { } \\"}' in ly
    assert f"from {site}/hostile.html" in ly
    assert not list(tmp_path.rglob("PWNED"))
    text = subprocess.run(["pdftotext", summary["artifacts"]["pdf"], "-"], capture_output=True, text=True, check=True).stdout
    assert "#(system" in text and "touch PWNED" in text
    pdf = Path(summary["artifacts"]["pdf"])
    assert pdf.parent == tmp_path and pdf.name.startswith("Évocation_system_touch_PWNED_header")


def test_a_redirect_is_followed(site: str, tmp_path: Path) -> None:
    got = fetch(f"{site}/redirect/{site}/piece.mp3", LinkOptions(), tmp_path)
    assert got.path.suffix == ".mp3"


def test_the_cache_downloads_a_link_once(site: str, tmp_path: Path) -> None:
    options = LinkOptions(cache=tmp_path / "cache")
    first = fetch(f"{site}/piece.wav", options, tmp_path / "a")
    stamp = first.path.stat().st_mtime_ns
    second = fetch(f"{site}/piece.wav", options, tmp_path / "b")
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


@pytest.mark.parametrize("path, options, message", [
    ("/missing.wav", {}, "404"),
    ("/page.html", {}, "no audio or video found"),
    ("/slow.wav", {"socket_timeout_s": 1.0}, "did not answer in time"),
    ("/huge.wav", {"max_bytes": 10**6}, "larger than the 1 MB limit"),
])
def test_bad_links_give_one_clear_error(site: str, path: str, options: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(LinkError, match=message):
        fetch(site + path, LinkOptions(**options), tmp_path)
    assert not any(tmp_path.iterdir())


def test_an_unreachable_host_is_one_line(tmp_path: Path) -> None:
    with socket_closed_port() as port:
        proc = run_cli("transcribe", f"http://127.0.0.1:{port}/piece.wav", "-o", tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "cannot reach the server" in proc.stderr, proc.stderr


def socket_closed_port():  # a port nothing listens on
    import contextlib
    import socket

    @contextlib.contextmanager
    def closed() -> Iterator[int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield port

    return closed()


def test_a_text_file_served_as_audio_is_refused_clearly(site: str, tmp_path: Path) -> None:
    proc = run_cli("transcribe", f"{site}/fake.mp3", "-o", tmp_path, "--model", "basic-pitch", "--no-cache")
    assert proc.returncode == 1
    assert "not an audio or video file" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_recording_over_the_length_limit_is_refused(site: str, tmp_path: Path) -> None:
    proc = run_cli("transcribe", f"{site}/piece.wav", "-o", tmp_path, "--model", "basic-pitch", "--max-duration", "0.1",
                   "--no-cache")
    assert proc.returncode == 1 and "0.3 min long, over the 0.1 min limit" in proc.stderr, proc.stderr
    assert not any(tmp_path.glob("*.pdf"))


def test_a_bad_cookies_file_is_refused(site: str, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("this is not\na cookies file\n")
    proc = run_cli("transcribe", f"{site}/piece.wav", "-o", tmp_path, "--cookies", cookies)
    assert proc.returncode == 1 and "not a Netscape-format cookies file" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_good_cookies_file_is_used_and_left_untouched(site: str, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tSECRET-VALUE\n")
    before = cookies.read_bytes()
    got = fetch(f"{site}/piece.wav", LinkOptions(cookies=cookies), tmp_path / "dl")
    assert got.path.is_file() and cookies.read_bytes() == before
    assert not any(b"SECRET-VALUE" in p.read_bytes() for p in (tmp_path / "dl").rglob("*") if p.is_file())


def test_the_policy_refuses_private_addresses(site: str, tmp_path: Path) -> None:
    port = site.rsplit(":", 1)[1]
    for url in (f"{site}/piece.wav", f"http://localhost:{port}/piece.wav", f"http://[::1]:{port}/piece.wav",
                "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x.wav"):
        with pytest.raises(LinkError, match="private, loopback or reserved address"):
            fetch(url, LinkOptions(policy=LinkPolicy()), tmp_path)
    for url in ("file:///etc/passwd", "ftp://example.org/x.wav", "gopher://x"):
        with pytest.raises(LinkError, match="only http and https"):
            fetch(url, LinkOptions(policy=LinkPolicy()), tmp_path)


def test_the_policy_refuses_private_addresses_behind_a_redirect(site: str, tmp_path: Path) -> None:
    """127.0.0.2 stands for a private address here: the policy allows the first server (it must,
    for the test to reach it) and refuses where its redirect points."""
    port = site.rsplit(":", 1)[1]
    policy = LinkPolicy(allow_private=True, blocked=(ipaddress.ip_network("127.0.0.2/32"),))
    assert fetch(f"{site}/piece.wav", LinkOptions(policy=policy), tmp_path / "ok").path.is_file()
    with pytest.raises(LinkError, match="127.0.0.2 is a private"):
        fetch(f"{site}/redirect/http://127.0.0.2:{port}/piece.wav", LinkOptions(policy=policy), tmp_path / "no")


def test_a_playlist_is_refused_unless_asked_for(site: str, tmp_path: Path) -> None:
    refused = run_cli("transcribe", f"{site}/two.html", "-o", tmp_path, "--model", "basic-pitch")
    assert refused.returncode == 1 and "playlist or channel (2 items)" in refused.stderr, refused.stderr
    proc = run_cli("transcribe", f"{site}/two.html", "-o", tmp_path, "--model", "basic-pitch", "--playlist",
                   "--formats", "ly", "--json")
    assert proc.returncode == 0, proc.stderr
    summaries = json.loads(proc.stdout)
    assert [Path(s["artifacts"]["ly"]).name for s in summaries] == ["01-Two_pieces_1.ly", "02-Two_pieces_2.ly"]


def test_a_guarded_fetch_leaves_the_rest_of_the_process_alone(site: str, tmp_path: Path) -> None:
    """While a fetch under a policy runs, this process's other threads resolve and connect as
    before: a server's own connections (database, storage, webhooks) are not the link's."""
    import socket

    port = site.rsplit(":", 1)[1]
    policy = LinkPolicy(allow_private=True, blocked=(ipaddress.ip_network("127.0.0.2/32"),))
    resolve = socket.getaddrinfo
    errors: list[BaseException] = []

    def slow_fetch() -> None:
        try:
            fetch(f"{site}/slow.wav", LinkOptions(policy=policy, socket_timeout_s=3.0), tmp_path / "slow")
        except LinkError as exc:  # the slow server never answers: that is the point
            errors.append(exc)

    thread = threading.Thread(target=slow_fetch)
    thread.start()
    seen = 0
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        assert socket.getaddrinfo is resolve
        assert socket.getaddrinfo("127.0.0.2", int(port))  # refused for the link, not for us
        seen += 1
        time.sleep(0.05)
    thread.join()
    assert seen > 20 and len(errors) == 1 and "did not answer in time" in str(errors[0])
    with pytest.raises(LinkError, match="127.0.0.2 is a private"):  # the policy still holds for the fetch
        fetch(f"{site}/redirect/http://127.0.0.2:{port}/piece.wav", LinkOptions(policy=policy), tmp_path / "no")
