"""How long a finished job's page takes to load in a real browser (Debian's chromium through
Playwright): from navigation to the score's SVG pages in place with every bar found, and to both
players holding their audio's metadata (readyState >= 1).

A real ``kimiwonosete serve`` on loopback gets the recording as an upload; the moment the job is
done, a fresh browser opens its page (the first look), then ``--loads`` more times (warm). Then,
in the same run, the job's prepared view (``jobs/<id>/view/``: the SVG pages and the players'
audio its last step made) is removed from the store and the page is looked at again, first and
warm: what every first look cost when the page made them on demand, as it still does for a job
that has none.

    .venv/bin/python benchmarks/page_load.py ../shared/eval/maps/MAPS_MUS-ty_november_ENSTDkAm.flac
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from load import start_server

CHROMIUM = "/usr/bin/chromium"


def look(browser: Browser, url: str, width: int) -> dict[str, Any]:
    """One load of the page in a fresh context (no HTTP cache kept): seconds to the score, to both players."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#sheet[data-bars]", timeout=120_000)
    sheet_s = time.perf_counter() - t0
    for player in ("#rec-audio", "#score-audio"):
        page.wait_for_function(f"() => document.querySelector('{player}').readyState >= 1", timeout=120_000)
    both_s = time.perf_counter() - t0
    found = {"score_s": round(sheet_s, 3), "score_and_players_s": round(both_s, 3),
             "bars": int(page.locator("#sheet").get_attribute("data-bars") or 0),
             "pages": page.locator("#sheet .page").count()}
    context.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--model", default="transkun")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loads", type=int, default=3, help="warm loads after each first look")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="kimiwonosete-page-load-")) / "data"
    proc, server = start_server(data, args.workers)
    try:
        with httpx.Client(base_url=server, timeout=60) as client:
            with open(args.recording, "rb") as f:
                job_id = client.post("/jobs", files={"file": (args.recording.name, f)},
                                     data={"model": args.model}).raise_for_status().json()["id"]
            while (job := client.get(f"/jobs/{job_id}").raise_for_status().json())["state"] not in ("done", "failed"):
                time.sleep(0.2)
        assert job["state"] == "done", job
        url = f"{server}/?job={job_id}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            prepared = [look(browser, url, args.width) for _ in range(1 + args.loads)]
            shutil.rmtree(data / "store" / "jobs" / job_id / "view")
            on_demand = [look(browser, url, args.width) for _ in range(1 + args.loads)]
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        shutil.rmtree(data.parent, ignore_errors=True)
    print(json.dumps({"recording": args.recording.name, "duration_s": job["summary"]["duration_s"],
                      "bars": job["summary"]["bars"], "width": args.width, "job_timings_s": job["timings_s"],
                      "load_average": os.getloadavg()[0],
                      "prepared by the job": {"first": prepared[0], "warm": prepared[1:]},
                      "made on demand (view removed)": {"first": on_demand[0], "warm": on_demand[1:]}}, indent=1))


if __name__ == "__main__":
    main()
