"""Tempo marks from performed beat times, and where the writers put them."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from kimiwonosete.engrave.lilypond import lilypond_source, render_pdf
from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.notes import Note, Performance
from kimiwonosete.score.build import build_score
from kimiwonosete.score.tempo import tempo_marks

SEED = 3


def test_rubato_makes_no_new_mark() -> None:
    rng = np.random.default_rng(SEED)
    # 3/4 at 90 BPM, each beat up to 8 % early or late, and a phrase-end ritardando of one bar.
    periods = 60 / 90 * (1 + rng.uniform(-0.08, 0.08, size=60))
    periods[27:30] *= 1.3
    marks = tempo_marks(np.concatenate([[0.0], np.cumsum(periods)]), 3)
    assert len(marks) == 1 and abs(marks[0][1] - 90) <= 4


def test_a_new_tempo_for_a_section_gets_a_mark() -> None:
    beats = np.concatenate([np.arange(0, 24, 0.6), 24 + np.arange(0, 20, 0.4)])  # 100, then 150
    (bar0, first), (bar, second) = tempo_marks(beats, 4)
    assert (bar0, first) == (0, 100)
    assert bar == 10 and abs(second - 150) <= 2


def _sectioned() -> Performance:
    """4/4: 8 bars of quarters at 120 BPM, then 8 bars at 80 (a bass note on each downbeat)."""
    notes, t = [], 0.5
    for bar in range(16):
        spb = 0.5 if bar < 8 else 0.75
        for beat in range(4):
            notes.append(Note(t, t + 0.9 * spb, 72 + (beat % 2) * 4, 90 if beat == 0 else 70))
            if beat == 0:
                notes.append(Note(t, t + 3.6 * spb, 48, 90))
            t += spb
    return Performance(notes, [], duration=t + 1)


def test_marks_reach_lilypond_and_musicxml(tmp_path: Path) -> None:
    # The rules' beat level (the learned model hears this mechanical pulse at half speed).
    score = build_score(_sectioned(), "sections", model="heuristic")
    assert len(score.marks) == 2
    (_, first), (bar, second) = score.marks
    assert abs(first - 120) <= 4 and abs(second - 80) <= 4 and 7 <= bar <= 9
    ly = lilypond_source(score)
    assert ly.count("\\tempo") == 2
    assert f"\\tempo 4 = {second}" in ly.split("| % " + str(bar))[1]  # in bar `bar + 1`, upper staff
    root = ET.fromstring(musicxml_bytes(score))
    per_measure = {m.get("number"): [int(x.text) for x in m.iter("per-minute")] for m in root.iter("measure")}
    assert per_measure["1"] == [first] and per_measure[str(bar + 1)] == [second]
    assert sum(len(v) for v in per_measure.values()) == 2
    pdf = tmp_path / "sections.pdf"
    pdf.write_bytes(render_pdf(ly))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert f"= {first}" in text and f"= {second}" in text
