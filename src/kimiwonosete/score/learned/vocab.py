"""What the score model predicts for each note, as class indices: shared by training and inference.

Conventions follow the evaluation annotations (ASAP, A-MAPS): compound metres count dotted
beats, 3/8 counts eighths, 2/2 halves.
"""

from __future__ import annotations

import numpy as np

UNKNOWN = -1  # a target that is not known (ignored by the loss)

#: time signatures the meter head tells apart; any other is UNKNOWN for training
METERS = ((2, 4), (3, 4), (4, 4), (2, 2), (3, 8), (6, 8), (9, 8), (12, 8), (6, 4), (3, 2))

#: beat periods (s): log-spaced classes from PERIOD_MIN_S, PERIOD_STEPS per octave
PERIOD_MIN_S, PERIOD_CLASSES, PERIOD_STEPS = 0.15, 30, 6

KEY_MIN, KEY_MAX = -7, 7  # key signature fifths
KEY_CLASSES = KEY_MAX - KEY_MIN + 1

#: spelling: the pitch class's spelling on the line of fifths is base + 12 * (class - 1), where
#: base is its position in -6..5 (Gb .. B): class 0 flatter (Cb, Fb, Bbb ...), 2 sharper (B#, E#, F# ...)
SPELL_CLASSES = 3

#: onset phase within the beat, in twelfths (8ths, 16ths and triplets all land on them)
PHASE_CLASSES = 12
PHASE_TOLERANCE = 0.02


def meter_class(numerator: int, denominator: int) -> int:
    """Index of the time signature in ``METERS`` (UNKNOWN for others).

    >>> meter_class(6, 8), meter_class(5, 4)
    (5, -1)
    """
    try:
        return METERS.index((numerator, denominator))
    except ValueError:
        return UNKNOWN


def period_class(seconds: np.ndarray) -> np.ndarray:
    """Beat periods (s) to classes.

    >>> period_class(np.array([0.15, 0.3, 0.6, 100.0])).tolist()
    [0, 6, 12, 29]
    """
    c = np.round(np.log2(np.maximum(seconds, 1e-6) / PERIOD_MIN_S) * PERIOD_STEPS)
    return np.clip(c, 0, PERIOD_CLASSES - 1).astype(np.int64)


def class_period(classes: np.ndarray) -> np.ndarray:
    """Class indices (or fractional, expected classes) back to periods in seconds."""
    return PERIOD_MIN_S * 2.0 ** (np.asarray(classes, dtype=float) / PERIOD_STEPS)


def base_tpc(pitch: np.ndarray) -> np.ndarray:
    """The plainest spelling of each pitch class on the line of fifths: Gb (-6) .. B (5).

    >>> base_tpc(np.array([60, 61, 66, 71])).tolist()
    [0, -5, -6, 5]
    """
    f = (np.asarray(pitch) % 12 * 7) % 12
    return np.where(f > 5, f - 12, f)


def spell_class(pitch: np.ndarray, tpc: np.ndarray) -> np.ndarray:
    """Spelling class of each note (UNKNOWN where ``tpc`` is not one of the three)."""
    k = (np.asarray(tpc) - base_tpc(pitch)) // 12 + 1
    ok = ((np.asarray(tpc) - base_tpc(pitch)) % 12 == 0) & (k >= 0) & (k < SPELL_CLASSES)
    return np.where(ok, k, UNKNOWN)


def phase_class(phase: np.ndarray) -> np.ndarray:
    """Position in the beat (0..1) to twelfths; UNKNOWN off that grid (32nds, quintuplets)."""
    x = np.asarray(phase) * PHASE_CLASSES
    c = np.round(x)
    return np.where(np.abs(x - c) < PHASE_TOLERANCE * PHASE_CLASSES, c % PHASE_CLASSES, UNKNOWN).astype(np.int64)
