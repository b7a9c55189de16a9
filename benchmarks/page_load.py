"""How long a finished job's page takes to load in a real browser (Debian's chromium through
Playwright): from navigation to the score's SVG pages in place with every bar found, and to both
players holding their audio's metadata (readyState >= 1). The first load makes the SVG pages and
the two audio files (then kept in the job's store); the later ones read them.

    .venv/bin/python benchmarks/page_load.py http://127.0.0.1:8000 JOB_ID [--loads 3] [--width 1280]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx
from playwright.sync_api import sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server")
    parser.add_argument("job")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    job = httpx.get(f"{args.server}/jobs/{args.job}").raise_for_status().json()
    assert job["state"] == "done", job["state"]
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        for n in range(args.loads):
            context = browser.new_context(viewport={"width": args.width, "height": 900})  # no HTTP cache kept
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{args.server}/?job={args.job}")
            page.wait_for_selector("#sheet[data-bars]", timeout=60_000)
            sheet_s = time.perf_counter() - t0
            for player in ("#rec-audio", "#score-audio"):
                page.wait_for_function(f"() => document.querySelector('{player}').readyState >= 1", timeout=60_000)
            both_s = time.perf_counter() - t0
            results.append({"load": n + 1, "score_s": round(sheet_s, 3), "score_and_players_s": round(both_s, 3),
                            "bars": int(page.locator("#sheet").get_attribute("data-bars")),
                            "pages": page.locator("#sheet .page").count()})
            context.close()
        browser.close()
    print(json.dumps({"job": args.job, "duration_s": job["summary"]["duration_s"], "bars": job["summary"]["bars"],
                      "width": args.width, "loads": results}, indent=1))


if __name__ == "__main__":
    main()
