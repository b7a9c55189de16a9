"""What the web page shows of a finished job besides its artifacts: the score's SVG pages in each
layout (:mod:`.sheet`) and the two players' audio (:mod:`.listen`), kept in the job's store.

A job makes them as its last step (:func:`prepare`), so that the first look at a finished job is a
read; the page's endpoints make any that are missing (a job finished before this step existed, or
one whose step failed) with the same functions, so there is one way each is made.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from kimiwonosete.pipeline.store import Store
from kimiwonosete.pipeline.workfolder import Work
from kimiwonosete.service import listen, sheet
from kimiwonosete.service.jobs import artifact_key, prefix


def sheet_index(store: Store, job_id: str, artifacts: dict[str, str], layout: str,
                engraving: threading.Lock) -> dict[str, Any] | None:
    """The sheet's index in ``layout`` (rendered and stored first if it is not there); ``None`` if
    the job made no MusicXML. ``artifacts``: format -> stored artifact name."""
    name = artifacts.get("musicxml")
    if name is None:
        return None
    score = Work(store, f"{prefix(job_id)}/work").load_score("main")
    midi = artifacts.get("mid")
    return sheet.load_or_render(store, job_id, artifact_key(job_id, name),
                                artifact_key(job_id, midi) if midi else None, score, layout, engraving)


def prepare(store: Store, job_id: str, artifacts: dict[str, str], span: dict[str, Any],
            engraving: threading.Lock) -> list[str]:
    """Make everything the page shows of the job (what is there already is kept); the parts that
    could not be made, one line each (the page makes those when asked, or says why not).
    ``span``: the job's ``start`` and ``end``. Without verovio (the optional ``page`` extra) the
    sheet is left out."""
    parts: dict[str, Callable[[], object]] = {
        f"{kind} audio": partial(listen.make, store, job_id, kind, span, artifacts) for kind in listen.KINDS}
    if importlib.util.find_spec("verovio") is not None:
        for layout in sheet.LAYOUTS:
            parts[f"{layout} sheet"] = partial(sheet_index, store, job_id, artifacts, layout, engraving)
    # The audio is made by ffmpeg and FluidSynth processes while verovio renders here: at once,
    # the step takes about as long as its longest part.
    with ThreadPoolExecutor(len(parts), thread_name_prefix="kimiwonosete-view") as pool:
        running = {name: pool.submit(make) for name, make in parts.items()}
    failures = []
    for name, future in running.items():
        exc = future.exception()
        if exc is not None:
            failures.append(f"{name}: {' '.join(str(exc).split()) or type(exc).__name__}")
    return failures
