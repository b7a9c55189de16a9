"""The web page at ``/`` in a real browser: Debian's chromium driven by Playwright (no browser
download) against a real ``kimiwonosete serve`` on loopback, the example recording served on
127.0.0.1 (private links allowed for the test); and against a second server as one open to
others would be: API keys required, private links refused, a 1 MB upload cap.

A failing test leaves a screenshot of the page in its temporary folder (the path is in the
failure's message). ``KIMIWONOSETE_PAGE_SHOTS=DIR`` also writes the acceptance screenshots
(submit, in progress, finished; desktop and phone widths) to ``DIR``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import mido
import pytest

from bidi import FIREFOX, Firefox
from kimiwonosete.pipeline.store import Store
from kimiwonosete.pipeline.workfolder import Work
from kimiwonosete.score.model import TICKS_PER_QUARTER
from servicetools import Service, free_port

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TYPES = {"pdf": "application/pdf", "musicxml": "application/vnd.recordare.musicxml+xml", "mid": "audio/midi",
         "performance": "audio/midi", "ly": "text/x-lilypond"}
TITLE = 'Menuet <b>in G</b> & "friends"'
JOB_S = 240_000  # ms: the example's job, on two shared cores
KEY = "page key; with=odd/chars+"  # a cookie needs it percent-encoded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("page") / "data", "--workers", "1", "--rate-limit", "1000",
                      env={"KIMIWONOSETE_ALLOW_PRIVATE_URLS": "1"})
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("guarded") / "data", "--workers", "1", "--rate-limit", "1000",
                      "--api-key", KEY, "--max-upload-mb", "1", env={"KIMIWONOSETE_ALLOW_PRIVATE_URLS": ""})
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def media(example_flac: Path) -> Iterator[str]:
    """The example recording's folder, served by a plain HTTP server on 127.0.0.1."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(example_flac.parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{example_flac.name}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            raise AssertionError("Debian's chromium is missing (scripts/setup.sh installs it)")
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        # Audio plays without a click (the test starts a player itself).
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--autoplay-policy=no-user-gesture-required"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    if not FIREFOX.exists():
        if os.environ.get("CI"):
            raise AssertionError("Debian's firefox-esr is missing (scripts/setup.sh installs it)")
        pytest.skip("Debian's firefox-esr is not installed (scripts/setup.sh installs it)")
    browser = Firefox(**DESKTOP)
    yield browser
    browser.close()


def _shots() -> Path | None:
    where = os.environ.get("KIMIWONOSETE_PAGE_SHOTS")
    if not where:
        return None
    Path(where).mkdir(parents=True, exist_ok=True)
    return Path(where)


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    where = _shots()
    if where is not None:
        page.screenshot(path=str(where / f"{name}.png"), full_page=True)


@contextlib.contextmanager
def _on_failure(page, folder: Path, name: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """A screenshot of the page if the block fails, its path added to the failure."""
    try:
        yield
    except BaseException as exc:
        path = folder / f"{name}-failure.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True)
        raise AssertionError(f"{exc} (screenshot: {path})") from exc


def _script_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The page's uncaught script errors, collected as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _bar_starts(midi: bytes, bars: int, bar_quarters: float, pickup_quarters: float) -> list[float]:
    """When each bar starts in the score MIDI (its own tempo map), computed apart from the page; a
    pickup bar 1 is ``bar_quarters - pickup_quarters`` long."""
    import io

    song = mido.MidiFile(file=io.BytesIO(midi))
    tempos = sorted((t, msg.tempo) for track in song.tracks for t, msg in _absolute(track) if msg.type == "set_tempo")
    tempos = tempos or [(0, 500000)]
    starts = []
    for b in range(bars):
        tick = round(max(0.0, b * bar_quarters - pickup_quarters) * song.ticks_per_beat)
        seconds, last_tick, tempo = 0.0, 0, tempos[0][1]
        for at, value in tempos:
            if at >= tick:
                break
            seconds += mido.tick2second(at - last_tick, song.ticks_per_beat, tempo)
            last_tick, tempo = at, value
        starts.append(seconds + mido.tick2second(tick - last_tick, song.ticks_per_beat, tempo))
    return starts


def _absolute(track):  # type: ignore[no-untyped-def]
    t = 0
    for msg in track:
        t += msg.time
        yield t, msg


def test_a_link_becomes_a_score_to_read_hear_and_download(server: Service, media: str, browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = _script_errors(page)
    with _on_failure(page, tmp_path, "desktop"):
        page.goto(server.url + "/")
        page.wait_for_selector("#jobs li")
        _shot(page, "desktop-1-submit")
        page.get_by_label("Link to a recording").fill(media)
        page.locator("#options summary").click()
        page.get_by_label("Title").fill(TITLE)
        page.get_by_label("Model").select_option("basic-pitch")
        _shot(page, "desktop-1b-submit-options")
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#progress:not([hidden])")
        assert "?job=" in page.url
        job_id = page.url.split("?job=")[1]
        page.wait_for_selector("#log li")
        _shot(page, "desktop-2-progress")
        # The same job's address opened afresh (a phone here) joins it where it is.
        early = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        joined = early.new_page()
        joined.goto(page.url)
        joined.wait_for_selector("#progress:not([hidden]), #result:not([hidden])")
        if joined.locator("#progress").is_visible():
            _shot(joined, "phone-2-progress")
        early.close()
        page.wait_for_selector("#result:not([hidden])", timeout=JOB_S)
        job = httpx.get(f"{server.url}/jobs/{job_id}").json()
        assert job["state"] == "done"
        # The job made what the page shows before it was done: both layouts (this page asks for the
        # wide one only) and both players' audio.
        view = server.data_dir / "store" / "jobs" / job_id / "view"
        assert sorted(p.parent.name.split("-")[1] for p in view.glob("sheet-*/index.json")) == ["narrow", "wide"]
        assert (view / "recording.opus").stat().st_size > 10_000 and (view / "score.opus").stat().st_size > 10_000
        assert "page view" in job["timings_s"]
        assert not [e for e in server.events() if e["event"] == "page view not made"]
        # The untrusted title is text, never markup.
        assert page.locator("#result-title").text_content() == TITLE
        assert page.locator("#result-title b").count() == 0
        # The score: as many bars drawn as the job says it has.
        page.wait_for_selector("#sheet[data-bars]", timeout=60_000)
        bars = job["summary"]["bars"]
        assert page.locator("#sheet svg g.measure").count() == bars
        assert int(page.locator("#sheet").get_attribute("data-bars")) == bars
        # Drawn in full: staff lines and stems have a stroke (verovio's own <style> in each page
        # applies under the page's Content-Security-Policy).
        assert page.evaluate("getComputedStyle(document.querySelector('#sheet g.staff > path')).stroke") != "none"
        assert page.locator("#sheet g.measure").first.bounding_box()["height"] > 50
        # Both players load, the recording as long as the part transcribed.
        for player in ("#rec-audio", "#score-audio"):
            page.wait_for_function(f"() => document.querySelector('{player}').readyState >= 1", timeout=60_000)
        durations = page.evaluate("[document.querySelector('#rec-audio').duration,"
                                  " document.querySelector('#score-audio').duration]")
        assert abs(durations[0] - job["summary"]["duration_s"]) < 1.0 and durations[1] > 5, durations
        _shot(page, "desktop-3-finished")
        # Every download link gives its file.
        links = {a.get_attribute("data-format"): a.get_attribute("href") for a in page.locator("#downloads a").all()}
        assert set(links) == set(TYPES)
        for fmt, href in links.items():
            got = httpx.get(server.url + href)
            assert got.status_code == 200 and got.headers["content-type"].startswith(TYPES[fmt]), fmt
        # The score's bar being heard: playing the score audio marks the bar its own MIDI is at.
        sheet = httpx.get(f"{server.url}/jobs/{job_id}/sheet", params={"layout": "wide"}).json()
        midi = httpx.get(server.url + job["artifacts"]["mid"]).content
        score = Work(Store(str(server.data_dir / "store")), f"jobs/{job_id}/work").load_score("main")
        assert score is not None
        quarters = score.time_signature.bar_ticks / TICKS_PER_QUARTER
        starts = _bar_starts(midi, bars, quarters, score.pickup / TICKS_PER_QUARTER)
        assert max(abs(s - b["score_s"]) for s, b in zip(starts, sheet["bars"])) < 0.01
        page.evaluate("document.querySelector('#score-audio').muted = true; document.querySelector('#score-audio').play()")
        page.wait_for_function("() => document.querySelector('#score-audio').currentTime > 3.6", timeout=30_000)
        page.evaluate("document.querySelector('#score-audio').pause()")
        at = page.evaluate("document.querySelector('#score-audio').currentTime")
        expected = max(i for i, s in enumerate(starts) if s <= at + 1e-3)
        assert expected >= 2
        page.wait_for_function(f"() => document.querySelector('#sheet').dataset.now === '{expected}'", timeout=5_000)
        marked = page.evaluate("document.querySelector('#sheet rect.now-box').nextElementSibling.id")
        assert marked == sheet["bars"][expected]["id"]
        _shot(page, "desktop-3b-playing")
        # The recording: seeking into a bar, as the score's beat times place it, marks that bar.
        downbeats = score.downbeat_times
        target = min(bars - 2, 4)
        page.evaluate(f"document.querySelector('#rec-audio').currentTime = {downbeats[target] + 0.2}")
        page.wait_for_function(f"() => document.querySelector('#sheet').dataset.now === '{target}'", timeout=10_000)
        # A reload shows the same finished job (its id is in the address).
        page.reload()
        page.wait_for_selector("#sheet[data-bars]", timeout=60_000)
        assert page.locator("#result-title").text_content() == TITLE
        assert not errors, errors
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    small = phone.new_page()
    with _on_failure(small, tmp_path, "phone"):
        small.goto(f"{server.url}/?job={job_id}")
        small.wait_for_selector("#sheet[data-bars]", timeout=60_000)
        # The narrow layout, fitting the phone's width, all the bars in it; it zooms in (then scrolls sideways).
        assert small.locator("#sheet").get_attribute("data-layout") == "narrow"
        assert small.locator("#sheet svg g.measure").count() == job["summary"]["bars"]
        width = small.evaluate("document.querySelector('#sheet .page').getBoundingClientRect().width")
        assert width <= PHONE["width"]
        small.get_by_role("button", name="Zoom in").click()
        assert small.evaluate("document.querySelector('#sheet .page').getBoundingClientRect().width") > width * 1.2
        small.get_by_role("button", name="Zoom out").click()
        _shot(small, "phone-3-finished")
        small.goto(f"{server.url}/")
        small.wait_for_selector("#jobs li a")
        _shot(small, "phone-1-submit")
    phone.close()
    context.close()


def test_bad_input_is_explained_next_to_its_field(server: Service, browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    with _on_failure(page, tmp_path, "errors"):
        page.goto(server.url + "/")
        # Every field has a label; the keyboard reaches the link, the file picker, the options and
        # the button, in that order.
        assert page.evaluate("[...document.querySelectorAll('input, select')].every(e => e.labels.length > 0)")
        reached = []
        for _ in range(10):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        order = [reached.index(x) for x in ("link", "file", "SUMMARY", "go")]
        assert order == sorted(order), reached
        page.get_by_role("button", name="Make the score").click()
        assert "paste a link or choose a file" in page.locator("#form-error").text_content().lower()
        # Refused by the API at once (the link policy: only http and https).
        page.get_by_label("Link to a recording").fill("file:///etc/passwd")
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#link-error:not([hidden])")
        assert "only http and https" in page.locator("#link-error").text_content()
        assert page.get_by_label("Link to a recording").get_attribute("aria-invalid") == "true"
        page.get_by_label("Link to a recording").fill("")
        # Accepted, then failed: a text file is not audio; the reason shows by the file field.
        text = tmp_path / "notes.mp3"
        text.write_text("not audio at all\n" * 200)
        page.set_input_files("#file", str(text))
        assert "notes.mp3" in page.locator("#file-chosen").text_content()
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#file-error:not([hidden])", timeout=60_000)
        assert page.locator("#file-error").text_content().startswith("The upload")
        assert "?job=" in page.url
        # Start after end: a mistake in the options shows under the options.
        page.goto(server.url + "/")
        page.get_by_label("Link to a recording").fill("https://example.org/a.mp3")
        page.locator("#options summary").click()
        page.get_by_label("Start (seconds)").fill("10")
        page.get_by_label("End (seconds)").fill("5")
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#options-error:not([hidden])")
        assert "end must come after start" in page.locator("#options-error").text_content().lower()
        _shot(page, "desktop-4-errors")
    context.close()


def test_keys_limits_and_the_link_policy_are_explained_in_plain_words(guarded: Service, media: str, minuet_mid: Path,
                                                                      browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = _script_errors(page)
    with _on_failure(page, tmp_path, "guarded"):
        page.goto(guarded.url + "/")
        # No key yet: the list of jobs cannot load, and the API key field opens to say why.
        page.wait_for_selector("#key-error:not([hidden])")
        assert page.locator("#access").evaluate("d => d.open")
        page.get_by_label("Link to a recording").fill(media)
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#key-error:not([hidden])")
        assert "needs an API key" in page.locator("#key-error").text_content()
        assert "?job=" not in page.url
        _shot(page, "desktop-5-key-needed")
        page.get_by_label("API key").fill("not the key")
        page.get_by_role("button", name="Use this key").click()
        page.wait_for_selector("#key-error:not([hidden])")
        assert "did not accept this API key" in page.locator("#key-error").text_content()
        # The key: the list loads, and a reload keeps it.
        page.get_by_label("API key").fill(KEY)
        page.get_by_role("button", name="Use this key").click()
        page.wait_for_function("() => document.querySelector('#jobs li')?.textContent === 'None yet.'")
        page.reload()
        page.wait_for_function("() => document.querySelector('#jobs li')?.textContent === 'None yet.'")
        assert page.get_by_label("API key").input_value() == KEY
        assert page.locator("#key-error").is_hidden()
        # A link to this machine: accepted, then refused where the download would connect; the
        # reason by the link field.
        page.get_by_label("Link to a recording").fill(media)
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#link-error:not([hidden])", timeout=60_000)
        assert "a private, loopback or reserved address: links there are refused" in page.locator("#link-error").text_content()
        refused_job = page.url.split("?job=")[1]
        _shot(page, "desktop-6-private-link")
        # Over the upload cap: said by the file field (the server's 413, or the upload cut off).
        page.goto(guarded.url + "/")
        big = tmp_path / "big.wav"
        big.write_bytes(b"RIFF" + bytes(1_500_000))
        page.set_input_files("#file", str(big))
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#file-error:not([hidden])")
        assert "larger than this server" in page.locator("#file-error").text_content()
        assert len(httpx.get(f"{guarded.url}/jobs", headers={"X-API-Key": KEY}).json()["jobs"]) == 1
        _shot(page, "desktop-7-too-large")
        # A short job with the key: the event stream, the score, both players and a download (the
        # browser's own requests, which carry the key in the page's cookie).
        page.set_input_files("#file", str(minuet_mid))
        page.get_by_role("button", name="Make the score").click()
        page.wait_for_selector("#sheet[data-bars]", timeout=JOB_S)
        for player in ("#rec-audio", "#score-audio"):
            page.wait_for_function(f"() => document.querySelector('{player}').readyState >= 1", timeout=60_000)
        with page.expect_download() as download:
            page.locator("#downloads a[data-format=musicxml]").click()
        assert Path(download.value.path()).read_bytes().startswith(b"<?xml")
        assert not errors, errors
    context.close()
    # A job's address opened in a browser without the key: the key is asked for, not "no such job".
    keyless = browser.new_context(viewport=DESKTOP)
    fresh = keyless.new_page()
    with _on_failure(fresh, tmp_path, "keyless"):
        fresh.goto(f"{guarded.url}/?job={refused_job}")
        fresh.wait_for_selector("#form-error:not([hidden])")
        assert "could not be shown: this server needs an API key" in fresh.locator("#form-error").text_content()
        assert fresh.locator("#access").evaluate("d => d.open")
    keyless.close()
    assert KEY not in guarded.log_text()


def test_firefox_submits_follows_reads_and_plays(server: Service, firefox: Firefox, minuet_mid: Path) -> None:
    """The same page in Debian's Firefox ESR (over WebDriver BiDi, see tests/bidi.py): a refused
    link by its field, then a MIDI file put in the file field as a drop would, followed to the end
    (the event stream), its score drawn and the bar being heard marked, both players loaded."""
    firefox.goto(server.url + "/")
    firefox.wait_for("!!document.querySelector('#jobs li')")
    firefox.evaluate("(document.querySelector('#link').value = 'file:///etc/passwd', document.querySelector('#go').click())")
    assert "only http and https" in firefox.wait_for("document.querySelector('#link-error:not([hidden])')?.textContent")
    firefox.evaluate(f"""(() => {{
        document.querySelector('#link').value = '';
        const bytes = Uint8Array.from(atob('{base64.b64encode(minuet_mid.read_bytes()).decode()}'), c => c.charCodeAt(0));
        const moved = new DataTransfer();
        moved.items.add(new File([bytes], 'minuet.mid', {{ type: 'audio/midi' }}));
        document.querySelector('#file').files = moved.files;
        document.querySelector('#go').click();
    }})()""")
    job_id = firefox.wait_for("new URLSearchParams(location.search).get('job')")
    bars = int(firefox.wait_for("document.querySelector('#sheet').dataset.bars", timeout_s=JOB_S / 1000))
    job = httpx.get(f"{server.url}/jobs/{job_id}").json()
    assert job["state"] == "done" and bars == job["summary"]["bars"]
    assert firefox.evaluate("document.querySelectorAll('#sheet svg g.measure').length") == bars
    assert firefox.evaluate("document.querySelector('#result-title').textContent") == "minuet"  # the file's name
    assert firefox.evaluate("getComputedStyle(document.querySelector('#sheet g.staff > path')).stroke") != "none"
    for player in ("#rec-audio", "#score-audio"):
        firefox.wait_for(f"document.querySelector('{player}').readyState >= 1")
    assert firefox.evaluate("document.querySelector('#score-audio').duration") > 5
    sheet = httpx.get(f"{server.url}/jobs/{job_id}/sheet", params={"layout": "wide"}).json()
    firefox.evaluate(f"document.querySelector('#score-audio').currentTime = {sheet['bars'][2]['score_s'] + 0.05}")
    firefox.wait_for("document.querySelector('#sheet').dataset.now === '2'")
    assert firefox.evaluate("document.querySelector('#sheet rect.now-box').nextElementSibling.id") == sheet["bars"][2]["id"]
    if (where := _shots()) is not None:
        firefox.screenshot(where / "firefox-desktop-3-finished.png")
