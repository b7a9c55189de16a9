"""The score as the web page shows it: SVG pages engraved by verovio (LGPL, a PyPI wheel) from the
job's MusicXML artifact, and, per bar, where it is drawn and when it sounds.

Rendered once per job and kept in the job's store (``jobs/<id>/view/…``) under a key fixed by
verovio's version and the options below, so a second look costs a read, and a change of either
makes a new rendering instead of serving a stale one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kimiwonosete.pipeline.store import Store
from kimiwonosete.score.model import Score

#: verovio's layout: an A4-ish page (its units are tenths of a mm); ids seeded so a rendering of
#: the same MusicXML is the same bytes.
OPTIONS: dict[str, Any] = {"pageWidth": 2100, "pageHeight": 2970, "scale": 40, "adjustPageHeight": True,
                           "breaks": "auto", "xmlIdSeed": 1, "footer": "none", "svgViewBox": True}


@dataclass(frozen=True)
class Bar:
    """One bar: its SVG element's id, its page (from 1), when the score's audio reaches it and
    when the recording played it (seconds; ``None`` where the score has no beat times)."""

    id: str
    page: int
    score_s: float
    played_s: float | None


def _version() -> str:
    import verovio

    return str(verovio.toolkit().getVersion())


def cache_prefix(job_id: str) -> str:
    digest = hashlib.sha256(json.dumps([_version(), OPTIONS], sort_keys=True).encode()).hexdigest()[:12]
    return f"jobs/{job_id}/view/sheet-{digest}"


def render(musicxml: bytes, score: Score | None) -> tuple[list[str], list[Bar]]:
    """The pages (SVG text) and the bars of ``musicxml``; ``score`` (the job's) gives the times the
    recording played each bar."""
    import verovio

    tk = verovio.toolkit()
    tk.setOptions(OPTIONS)
    if not tk.loadData(musicxml.decode("utf-8")):
        raise ValueError("verovio could not read the MusicXML")
    pages = [tk.renderToSVG(n) for n in range(1, tk.getPageCount() + 1)]
    # The timemap lists each onset with the bar it opens (measureOn) at the MusicXML's own tempo,
    # which is the score MIDI's (both are written from the same tempo marks).
    starts: list[tuple[str, float]] = []
    for entry in tk.renderToTimemap({"includeMeasures": True}):
        measure = entry.get("measureOn")
        if measure and (not starts or starts[-1][0] != measure):
            starts.append((measure, entry["tstamp"] / 1000.0))
    downbeats = _downbeats(score, len(starts))
    bars = [Bar(mid, tk.getPageWithElement(mid), round(t, 3), downbeats[i] if downbeats else None)
            for i, (mid, t) in enumerate(starts)]
    return pages, bars


def _downbeats(score: Score | None, n_bars: int) -> list[float] | None:
    """When the recording reached each bar: every ``beats_per_bar``-th of the score's beat times."""
    if score is None or not score.beat_times:
        return None
    times = list(score.downbeat_times)
    if len(times) < n_bars:
        return None
    return [round(t, 3) for t in times[:n_bars]]


def load_or_render(store: Store, job_id: str, musicxml_key: str, score: Score | None) -> dict[str, Any]:
    """The sheet's index (page count, bars), rendering and storing it first if it is not there."""
    prefix = cache_prefix(job_id)
    cached = store.get(f"{prefix}/index.json")
    if cached is not None:
        return json.loads(cached)
    data = store.get(musicxml_key)
    if data is None:
        raise FileNotFoundError(musicxml_key)
    pages, bars = render(data, score)
    for n, svg in enumerate(pages, 1):
        store.put(f"{prefix}/page-{n}.svg", svg.encode("utf-8"))
    index = {"pages": len(pages), "bars": [b.__dict__ for b in bars]}
    store.put(f"{prefix}/index.json", json.dumps(index).encode())  # last: its presence means the pages are there
    return index
