"""The score as the web page shows it: SVG pages engraved by verovio (LGPL, a PyPI wheel) from the
job's MusicXML artifact, and, per bar, where it is drawn and when it sounds.

Rendered once per job and kept in the job's store (``jobs/<id>/view/…``) under a key fixed by
verovio's version and the options below, so a second look costs a read, and a change of either
makes a new rendering instead of serving a stale one.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from kimiwonosete.pipeline.store import Store
from kimiwonosete.score.model import Score

#: verovio's options for every layout; ids seeded so a rendering of the same MusicXML is the same
#: bytes (and a bar has the same id in both layouts).
OPTIONS: dict[str, Any] = {"pageHeight": 2970, "adjustPageHeight": True, "breaks": "auto", "xmlIdSeed": 1,
                           "footer": "none", "svgViewBox": True}
#: "wide": an A4 page (verovio's units are tenths of a mm); "narrow": a phone's width, fewer bars a
#: line and larger notes, so that the score is readable there without scrolling sideways.
LAYOUTS: dict[str, dict[str, Any]] = {"wide": {"pageWidth": 2100, "scale": 40},
                                      "narrow": {"pageWidth": 1100, "scale": 50, "pageMarginLeft": 20,
                                                 "pageMarginRight": 20}}

#: bump when what a rendering's index means changes (then the old renderings are not read)
INDEX_LAYOUT = 2


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

    # No fonts loaded (False): in a thread other than the importing one, they would not be found
    # (see render) and verovio would print errors for a toolkit that renders nothing.
    return str(verovio.toolkit(False).getVersion())


def cache_prefix(job_id: str, layout: str) -> str:
    digest = hashlib.sha256(json.dumps([INDEX_LAYOUT, _version(), OPTIONS, LAYOUTS[layout]],
                                       sort_keys=True).encode()).hexdigest()
    return f"jobs/{job_id}/view/sheet-{layout}-{digest[:12]}"


def render(musicxml: bytes, score: Score | None, layout: str = "wide",
           midi: bytes | None = None) -> tuple[list[str], list[Bar]]:
    """The pages (SVG text) and the bars of ``musicxml``; ``score`` (the job's) gives the times the
    recording played each bar, ``midi`` (the score MIDI) when the score's audio reaches each bar."""
    import verovio

    tk = verovio.toolkit()
    # verovio's default resource path (its fonts) is set per thread, by the thread that imported
    # it: a toolkit made in another of the server's threads finds no fonts unless told.
    tk.setResourcePath(str(resources.files("verovio") / "data"))
    tk.setOptions({**OPTIONS, **LAYOUTS[layout]})
    if not tk.loadData(musicxml.decode("utf-8")):
        raise ValueError("verovio could not read the MusicXML")
    pages = [tk.renderToSVG(n) for n in range(1, tk.getPageCount() + 1)]
    # The timemap lists each onset with the bar it opens (measureOn) and its place in quarter notes
    # (qstamp). Its times (tstamp) follow the MusicXML's few tempo marks; the score MIDI, which the
    # score audio plays, follows the performance's whole tempo map (they drift apart: 2.7 s by the
    # end of a 3-minute recording), so the bars' times are the qstamps read on the MIDI's tempo map.
    seconds = _clock(midi) if midi else None
    starts: list[tuple[str, float]] = []
    for entry in tk.renderToTimemap({"includeMeasures": True, "includeRests": True}):
        measure = entry.get("measureOn")
        if measure and (not starts or starts[-1][0] != measure):
            starts.append((measure, seconds(entry["qstamp"]) if seconds else entry["tstamp"] / 1000.0))
    downbeats = _downbeats(score, len(starts))
    bars = [Bar(mid, tk.getPageWithElement(mid), round(t, 3), downbeats[i] if downbeats else None)
            for i, (mid, t) in enumerate(starts)]
    return pages, bars


def _clock(midi: bytes) -> Callable[[float], float]:
    """Seconds at a number of quarter notes, on ``midi``'s tempo map.

    >>> import io, mido
    >>> song = mido.MidiFile(ticks_per_beat=480)
    >>> song.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
    ...                                    mido.MetaMessage("set_tempo", tempo=1000000, time=960)]))
    >>> out = io.BytesIO(); song.save(file=out)
    >>> clock = _clock(out.getvalue())
    >>> clock(1.0), clock(2.0), clock(3.0)
    (0.5, 1.0, 2.0)
    """
    import mido

    song = mido.MidiFile(file=io.BytesIO(midi))
    changes: list[tuple[int, int]] = []
    for track in song.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes.append((tick, msg.tempo))
    changes.sort()
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 500000))  # MIDI's default: 120 quarter notes a minute
    marks: list[tuple[int, float, int]] = []  # (tick, seconds there, tempo from there)
    elapsed = 0.0
    for i, (tick, tempo) in enumerate(changes):
        if i:
            elapsed += mido.tick2second(tick - changes[i - 1][0], song.ticks_per_beat, changes[i - 1][1])
        marks.append((tick, elapsed, tempo))

    def at(quarters: float) -> float:
        tick = quarters * song.ticks_per_beat
        start, elapsed, tempo = next(m for m in reversed(marks) if m[0] <= tick)
        return round(elapsed + mido.tick2second(tick - start, song.ticks_per_beat, tempo), 3)

    return at


def _downbeats(score: Score | None, n_bars: int) -> list[float] | None:
    """When the recording reached each bar: every ``beats_per_bar``-th of the score's beat times."""
    if score is None or not score.beat_times:
        return None
    times = list(score.downbeat_times)
    if len(times) < n_bars:
        return None
    return [round(t, 3) for t in times[:n_bars]]


def cached(store: Store, job_id: str, layout: str) -> dict[str, Any] | None:
    """The sheet's index if it was rendered already (a job's deletion removes it with the job)."""
    data = store.get(f"{cache_prefix(job_id, layout)}/index.json")
    return json.loads(data) if data is not None else None


def load_or_render(store: Store, job_id: str, musicxml_key: str, midi_key: str | None, score: Score | None,
                   layout: str, engraving: threading.Lock) -> dict[str, Any]:
    """The sheet's index (page count, bars) in ``layout``, rendering and storing it first if it is
    not there. ``engraving``: held while verovio runs (its toolkits are not safe to run at once in
    one process: their font resources are shared)."""
    prefix = cache_prefix(job_id, layout)
    found = cached(store, job_id, layout)
    if found is not None:
        return found
    data = store.get(musicxml_key)
    if data is None:
        raise FileNotFoundError(musicxml_key)
    with engraving:
        found = cached(store, job_id, layout)  # made by the request this one waited for
        if found is not None:
            return found
        pages, bars = render(data, score, layout, store.get(midi_key) if midi_key else None)
        for n, svg in enumerate(pages, 1):
            store.put(f"{prefix}/page-{n}.svg", svg.encode("utf-8"))
        index = {"pages": len(pages), "bars": [b.__dict__ for b in bars]}
        store.put(f"{prefix}/index.json", json.dumps(index).encode())  # last: its presence means the pages are there
    return index
