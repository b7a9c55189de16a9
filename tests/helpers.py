"""Helpers the tests share: a CLI runner and the note metric."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kimiwonosete.notes import Note
from kimiwonosete.score.model import Event, KeySignature, Pitch, Score, Staff, TimeSignature


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kimiwonosete ARGS`` as a user would, stdin closed, output captured."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "kimiwonosete", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
    )


def onset_f1(reference: list[Note], estimate: list[Note]) -> float:
    import mir_eval

    def arrays(notes: list[Note]) -> tuple[np.ndarray, np.ndarray]:
        iv = np.array([[n.onset, n.offset] for n in notes]).reshape(-1, 2)
        return iv, mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=float))

    (ri, rp), (ei, ep) = arrays(reference), arrays(estimate)
    return mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]


def short_marker() -> Path:
    """A file path short enough that a title holding it fits on one engraved line."""
    return Path(tempfile.mkdtemp(prefix="kw")) / "PWNED"


def two_voice_score() -> Score:
    """4/4, two bars: in the treble, half notes over quarter notes (one with a grace note) in bar 1,
    one voice in bar 2."""
    g2, g4, a4, b4 = Pitch(43, "G", 0, 2), Pitch(67, "G", 0, 4), Pitch(69, "A", 0, 4), Pitch(71, "B", 0, 4)
    d5, e5 = Pitch(74, "D", 0, 5), Pitch(76, "E", 0, 5)
    top = [Event(0, 24, (e5,), 80), Event(24, 24, (d5,), 80), Event(48, 48, (g4, b4), 80)]
    below = [Event(0, 12, (g4,), 70), Event(12, 12, (a4,), 70, (b4,)), Event(24, 12, (b4,), 70), Event(36, 12, (a4,), 70),
             Event(48, 48)]
    bass = [Event(0, 96, (g2,), 70)]
    return Score("Voices", TimeSignature(4, 4), KeySignature(1), 96.0, 2, [Staff("treble", top, below), Staff("bass", bass)])


def climbing_bass_score() -> Score:
    """4/4, four bars: the left hand plays C3, then two bars around E5, then C3 again."""
    c3, c4, e5, g5 = Pitch(48, "C", 0, 3), Pitch(60, "C", 0, 4), Pitch(76, "E", 0, 5), Pitch(79, "G", 0, 5)
    treble = [Event(b * 48, 48, (g5,), 80) for b in range(4)]
    bass = [Event(0, 48, (c3,), 70), Event(48, 48, (c4, e5), 70), Event(96, 48, (e5,), 70), Event(144, 48, (c3,), 70)]
    return Score("Clefs", TimeSignature(4, 4), KeySignature(0), 96.0, 4, [Staff("treble", treble), Staff("bass", bass)])


def climbing_treble_score() -> Score:
    """4/4: the right hand plays C5, G6 (8va), E7 (seven ledger lines: 15ma), then C5 again."""
    c5, g6, e7, c3 = Pitch(72, "C", 0, 5), Pitch(91, "G", 0, 6), Pitch(100, "E", 0, 7), Pitch(48, "C", 0, 3)
    treble = [Event(b * 48, 48, (p,), 80) for b, p in enumerate((c5, g6, e7, c5))]
    bass = [Event(b * 48, 48, (c3,), 70) for b in range(4)]
    return Score("Ottavas", TimeSignature(4, 4), KeySignature(0), 96.0, 4, [Staff("treble", treble), Staff("bass", bass)])


def high_treble_score(bars_high: range = range(1, 3), n_bars: int = 4) -> Score:
    """4/4: the right hand plays G6 (four ledger lines) in ``bars_high``, C5 elsewhere."""
    c5, g6, c3 = Pitch(72, "C", 0, 5), Pitch(91, "G", 0, 6), Pitch(48, "C", 0, 3)
    treble = [Event(b * 48, 48, (g6 if b in bars_high else c5,), 80) for b in range(n_bars)]
    bass = [Event(b * 48, 48, (c3,), 70) for b in range(n_bars)]
    return Score("Ottava", TimeSignature(4, 4), KeySignature(0), 96.0, n_bars, [Staff("treble", treble), Staff("bass", bass)])
