"""A short example recording made by this project: the Minuet in G major (BWV Anh. 114,
Christian Petzold, public domain), played with a little human timing and rendered with FluidSynth.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pretty_midi

from kimiwonosete.audio.synth import render_midi

TEMPO_QPM = 112.0
SEED = 1725
TIMING_JITTER_S = 0.012

# (bar, beat, length in beats, pitch name) per hand; 3/4, beats counted from 0.
RIGHT_HAND = """
0 0 1 D5; 0 1 .5 G4; 0 1.5 .5 A4; 0 2 .5 B4; 0 2.5 .5 C5
1 0 1 D5; 1 1 1 G4; 1 2 1 G4
2 0 1 E5; 2 1 .5 C5; 2 1.5 .5 D5; 2 2 .5 E5; 2 2.5 .5 F#5
3 0 1 G5; 3 1 1 G4; 3 2 1 G4
4 0 1 C5; 4 1 .5 D5; 4 1.5 .5 C5; 4 2 .5 B4; 4 2.5 .5 A4
5 0 1 B4; 5 1 .5 C5; 5 1.5 .5 B4; 5 2 .5 A4; 5 2.5 .5 G4
6 0 1 F#4; 6 1 .5 G4; 6 1.5 .5 A4; 6 2 .5 B4; 6 2.5 .5 G4
7 0 3 A4
"""
LEFT_HAND = """
0 0 2 G3; 0 0 2 B3; 0 0 2 D4; 0 2 1 A3
1 0 3 B3
2 0 3 C4
3 0 3 B3
4 0 3 A3
5 0 3 G3
6 0 1 D4; 6 1 1 B3; 6 2 1 G3
7 0 1 D4; 7 1 1 D3; 7 2 1 C4
"""
BEATS_PER_BAR = 3


def _parse(text: str) -> list[tuple[float, float, int]]:
    notes = []
    for item in text.replace("\n", ";").split(";"):
        if item.strip():
            bar, beat, length, name = item.split()
            start = int(bar) * BEATS_PER_BAR + float(beat)
            notes.append((start, float(length), pretty_midi.note_name_to_number(name)))
    return notes


def example_midi() -> pretty_midi.PrettyMIDI:
    """The minuet as a performance: two hands, slight timing and dynamics variation."""
    rng = np.random.default_rng(SEED)
    spb = 60.0 / TEMPO_QPM
    midi = pretty_midi.PrettyMIDI(initial_tempo=TEMPO_QPM)
    for text, name, loudness in ((RIGHT_HAND, "Right hand", 78), (LEFT_HAND, "Left hand", 62)):
        hand = pretty_midi.Instrument(program=0, name=name)
        for start, length, pitch in _parse(text):
            onset = max(0.0, 0.3 + start * spb + rng.normal(0, TIMING_JITTER_S))
            hand.notes.append(pretty_midi.Note(
                velocity=int(np.clip(loudness + rng.normal(0, 6), 30, 110)),
                pitch=pitch, start=onset, end=onset + 0.92 * length * spb,
            ))
        midi.instruments.append(hand)
    return midi


def write_example(out: Path) -> Path:
    """Write the example recording to ``out`` (.flac, .wav, .mp3, ... by suffix)."""
    buf = io.BytesIO()
    example_midi().write(buf)
    return render_midi(buf.getvalue(), Path(out))
