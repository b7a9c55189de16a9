"""Per-note inputs of the score model, from performed notes alone (times in seconds).

Everything is relative or log-scaled so a piece reads the same at any loudness offset, and the
network sees time only as intervals: inter-onset intervals between chords (the rhythm), how long
each note is held, and how many notes sound around it.
"""

from __future__ import annotations

import numpy as np

CHORD_S = 0.035  # notes starting within this of a chord's first note are one chord
MIN_S, MAX_S = 1 / 64, 8.0  # intervals are clipped to this range before log2
DENSITY_S = 2.0  # notes within this either side count toward the local density
N_FEATURES = 27


def chord_ids(onsets: np.ndarray, window_s: float = CHORD_S) -> np.ndarray:
    """A chord index per note (onsets sorted): a new chord starts ``window_s`` after the last one's start.

    >>> chord_ids(np.array([0.0, 0.01, 0.5, 0.52, 0.6])).tolist()
    [0, 0, 1, 1, 2]
    """
    ids = np.zeros(len(onsets), dtype=np.int64)
    start, k = -np.inf, -1
    for i, t in enumerate(onsets):
        if t - start > window_s:
            k, start = k + 1, t
        ids[i] = k
    return ids


def _log_interval(seconds: np.ndarray) -> np.ndarray:
    return (np.log2(np.clip(seconds, MIN_S, MAX_S)) + 2.0) / 3.0


def note_features(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """``(n, N_FEATURES)`` float32 inputs for notes sorted by onset (then pitch).

    >>> x = note_features(np.array([0.0, 0.0, 0.5]), np.array([0.4, 0.4, 1.0]), np.array([48, 64, 67]), np.array([80, 80, 70]))
    >>> x.shape, bool(x[0, 5] == x[1, 5])
    ((3, 27), True)
    """
    n = len(onset)
    onset = np.asarray(onset, dtype=float)
    pitch = np.asarray(pitch, dtype=int)
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    if n == 0:
        return x
    chord = chord_ids(onset)
    n_chords = int(chord[-1]) + 1
    chord_start = np.full(n_chords, np.inf)
    np.minimum.at(chord_start, chord, onset)
    chord_size = np.bincount(chord, minlength=n_chords)
    lo = np.full(n_chords, 999)
    hi = np.full(n_chords, -999)
    np.minimum.at(lo, chord, pitch)
    np.maximum.at(hi, chord, pitch)
    prev_gap = np.diff(chord_start, prepend=chord_start[0] - MAX_S)
    next_gap = np.diff(chord_start, append=chord_start[-1] + MAX_S)
    duration = np.maximum(np.asarray(offset, dtype=float) - onset, 1e-3)
    x[:, 0] = _log_interval(prev_gap[chord])
    x[:, 1] = _log_interval(next_gap[chord])
    x[:, 2] = _log_interval(duration)
    x[:, 3] = np.asarray(velocity, dtype=float) / 127.0
    x[:, 4] = (pitch - 64) / 24.0
    x[:, 5] = np.minimum(chord_size[chord], 10) / 5.0
    span = np.maximum(hi - lo, 1)[chord]
    x[:, 6] = (pitch - lo[chord]) / span
    x[:, 7] = pitch == lo[chord]
    x[:, 8] = pitch == hi[chord]
    x[:, 9] = (onset - chord_start[chord]) / CHORD_S
    x[:, 10] = np.clip(np.log2(duration / next_gap[chord]), -4, 4) / 4.0  # articulation
    left = np.searchsorted(onset, onset - DENSITY_S)
    right = np.searchsorted(onset, onset + DENSITY_S, side="right")
    x[:, 11] = np.log2(right - left) / 5.0
    cum_v = np.concatenate([[0.0], np.cumsum(velocity)])
    cum_p = np.concatenate([[0.0], np.cumsum(pitch)])
    count = right - left
    x[:, 12] = (np.asarray(velocity) - (cum_v[right] - cum_v[left]) / count) / 32.0
    x[:, 13] = (pitch - (cum_p[right] - cum_p[left]) / count) / 12.0
    x[:, 14] = _log_interval(np.diff(chord_start, prepend=chord_start[0] - MAX_S, n=1)[np.maximum(chord - 1, 0)])
    x[np.arange(n), 15 + pitch % 12] = 1.0
    return x
