"""Key signature from pitch content (Krumhansl-Kessler profiles) and pitch spelling on the
line of fifths, so that accidentals fit the key."""

from __future__ import annotations

import numpy as np

from kimiwonosete.notes import Note
from kimiwonosete.score.model import KeySignature, Pitch, on_line_of_fifths

MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAX_DURATION_WEIGHT_S = 2.0
# Spelling window on the line of fifths, relative to the signature's fifths: the 12 positions
# from (k + LOW) to (k + LOW + 11). Minor keys reach one step sharper for the raised 7th.
WINDOW_LOW = {"major": -4, "minor": -3}


def _fifths_of_pc(pc: int) -> int:
    """Signature fifths of the major key on pitch class ``pc`` (-6..5; F# major is written Gb)."""
    f = (pc * 7) % 12
    return f - 12 if f > 5 else f


def estimate_key(notes: list[Note]) -> KeySignature:
    """The best-correlating of the 24 major/minor keys, weighting pitches by duration.

    >>> from kimiwonosete.notes import Note
    >>> scale = [Note(i, i + 1, p, 80) for i, p in enumerate([67, 69, 71, 72, 74, 76, 78, 79, 62, 55])]
    >>> estimate_key(scale)
    KeySignature(fifths=1, mode='major')
    """
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += min(n.offset - n.onset, MAX_DURATION_WEIGHT_S)
    if not hist.any():
        return KeySignature(0, "major")
    best = (-np.inf, KeySignature(0, "major"))
    for tonic in range(12):
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1])
            relative_major = tonic if mode == "major" else (tonic + 3) % 12
            if r > best[0]:
                best = (r, KeySignature(_fifths_of_pc(relative_major), mode))
    return best[1]


def spell(midi: int, key: KeySignature) -> Pitch:
    """Spell ``midi`` in ``key``: the name whose line-of-fifths position is in the key's window.

    >>> spell(66, KeySignature(2)), spell(66, KeySignature(-3))
    (Pitch(midi=66, step='F', alter=1, octave=4), Pitch(midi=66, step='G', alter=-1, octave=4))
    """
    low = key.fifths + WINDOW_LOW[key.mode]
    pos = (midi % 12) * 7 % 12  # C=0, G=1, ... as a position in 0..11
    pos += 12 * ((low - pos + 11) // 12)  # shift by octaves of fifths into [low, low + 11]
    step, alter = on_line_of_fifths(pos)
    return Pitch(midi, step, alter, (midi - alter) // 12 - 1)
