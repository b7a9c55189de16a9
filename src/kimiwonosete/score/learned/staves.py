"""The staff model: which staff each note is written on.

The note model's staff head hears each note among its neighbours in the order they are played,
but not what is held while it sounds, and which staff a middle-register note belongs to is a
question of what the hands hold around it: the notes sounding below and above it, how far
away they are, where it sits in the register of the last second, and which note of the chord
before it leads to it. So the staff model reads the note model's inputs plus those
(``sounding_features``), through a narrower stack of the same convolutions (``net.forward``,
receptive field 509 notes: staves are a matter of seconds, not of the whole piece).
"""

from __future__ import annotations

import numpy as np

from kimiwonosete.score.learned.features import CHORD_S, chord_ids, note_features
from kimiwonosete.score.learned.features import N_FEATURES as N_NOTE_FEATURES
from kimiwonosete.score.learned.net import forward, packaged_weights

WEIGHTS = "staff_tcn.npz"
HEADS = {"staff": 1}
DILATIONS = (1, 2, 4, 8, 16, 32, 64) * 2
N_SOUNDING = 9
N_FEATURES = N_NOTE_FEATURES + N_SOUNDING
NEIGHBOURS = 48  # notes either side (in playing order) searched for the notes sounding with one
HELD_S = 0.03  # a note still sounding this long after another's onset is held under it
REGISTER_S = 1.0  # the register of the notes started within this either side
FAR = 36  # semitones: intervals are clipped here (and stand for "none")


def sounding_features(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """``(n, N_SOUNDING)`` float32: what sounds with each note (notes sorted by onset, then pitch).

    Columns: the numbers of notes sounding below and above it (its chord's and those held from
    before), the intervals to the nearest of them below and above, its distance from the lowest
    and the highest pitch started within ``REGISTER_S`` and its place between them, and the
    interval from the nearest pitch of the chord before it, with that note's place in its chord.

    >>> x = sounding_features(np.array([0.0, 0.0, 0.5]), np.array([2.0, 0.4, 1.0]), np.array([40, 64, 67]))
    >>> [round(float(v), 2) for v in x[2, :4]]  # the held bass below, nothing above: 27 semitones down
    [0.2, 0.0, 2.25, 3.0]
    """
    onset = np.asarray(onset, dtype=float)
    offset = np.asarray(offset, dtype=float)
    pitch = np.asarray(pitch, dtype=int)
    n = len(onset)
    x = np.zeros((n, N_SOUNDING), dtype=np.float32)
    if n == 0:
        return x
    idx = np.arange(n)
    j = idx[:, None] + np.arange(-NEIGHBOURS, NEIGHBOURS + 1)[None, :]
    inside = (j >= 0) & (j < n) & (j != idx[:, None])
    jc = np.clip(j, 0, n - 1)
    t = onset[:, None]
    sounding = inside & (onset[jc] <= t + CHORD_S) & (offset[jc] > t + HELD_S)
    d = pitch[jc] - pitch[:, None]  # (n, window): semitones above the note
    below = sounding & (d < 0)
    above = sounding & (d > 0)
    x[:, 0] = np.minimum(below.sum(axis=1), 10) / 5.0
    x[:, 1] = np.minimum(above.sum(axis=1), 10) / 5.0
    x[:, 2] = np.where(below, -d, FAR).min(axis=1).clip(0, FAR) / 12.0
    x[:, 3] = np.where(above, d, FAR).min(axis=1).clip(0, FAR) / 12.0
    lo_i = np.searchsorted(onset, onset - REGISTER_S)
    hi_i = np.searchsorted(onset, onset + REGISTER_S, side="right")
    near = inside & (j >= lo_i[:, None]) & (j < hi_i[:, None])
    low = np.minimum(np.where(near, pitch[jc], 999).min(axis=1), pitch)
    high = np.maximum(np.where(near, pitch[jc], -999).max(axis=1), pitch)
    x[:, 4] = np.minimum(pitch - low, FAR) / 24.0
    x[:, 5] = np.minimum(high - pitch, FAR) / 24.0
    x[:, 6] = (pitch - low) / np.maximum(high - low, 1)
    chord = chord_ids(onset)
    n_chords = int(chord[-1]) + 1
    start = np.searchsorted(chord, np.arange(n_chords))  # each chord's first note
    end = np.r_[start[1:], n]
    for k in range(1, n_chords):
        prev = slice(start[k - 1], end[k - 1])
        here = slice(start[k], end[k])
        pp = pitch[prev]
        gap = pitch[here][:, None] - pp[None, :]
        nearest = np.argmin(np.abs(gap), axis=1)
        x[here, 7] = np.clip(gap[np.arange(len(nearest)), nearest], -24, 24) / 12.0
        span = max(int(pp.max() - pp.min()), 1)
        x[here, 8] = (pp[nearest] - pp.min()) / span
    return x


def staff_features(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """The staff model's inputs: the note model's (``note_features``), then ``sounding_features``."""
    return with_sounding(note_features(onset, offset, pitch, velocity), onset, offset, pitch)


def with_sounding(note_x: np.ndarray, onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """The staff model's inputs from the note model's (``note_x``, as the decoder already has them)."""
    return np.concatenate([note_x, sounding_features(onset, offset, pitch)], axis=1)


def staff_logits(x: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Each note's log odds of the lower staff from the staff model's inputs ``x``
    (``staff_features``, or ``with_sounding``; notes sorted by onset, then pitch)."""
    return forward(weights or packaged_weights(WEIGHTS), x, HEADS)["staff"][:, 0]
