"""Onsets and offsets from performed time to the notation grid, beat by beat.

Each beat gets the coarsest subdivision that explains its onsets (quarter, 8ths, 16ths, or
8th-note triplets; in compound meter 8ths or 16ths), so sloppy timing does not become
32nd-note debris and triplets appear only where the onsets really fall on thirds.
"""

from __future__ import annotations

import numpy as np

EARLY = 0.12  # an onset this many beats before a beat belongs to that beat
#: subdivisions per beat -> penalty in beats, simple (quarter-note) beats
SIMPLE_GRIDS = {1: 0.0, 2: 0.01, 4: 0.03, 3: 0.05}
#: the same for compound (dotted-quarter) beats
COMPOUND_GRIDS = {1: 0.0, 3: 0.01, 6: 0.03}
#: grids by the beat's length in ticks: eighth beats (3/8) down to 16th triplets, half beats
#: (2/2) down to 16ths, dotted halves (6/4) to 16ths
GRIDS = {6: {1: 0.0, 2: 0.01, 3: 0.05}, 12: SIMPLE_GRIDS, 18: COMPOUND_GRIDS,
         24: {1: 0.0, 2: 0.01, 4: 0.02, 8: 0.04, 3: 0.05, 6: 0.06}, 36: {1: 0.0, 3: 0.01, 6: 0.02, 12: 0.04}}


def beat_positions(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Times (s) as fractional beat indices, extrapolating linearly past the first/last beat.

    >>> beat_positions(np.array([0.25, 1.5, 3.0]), np.array([0.0, 0.5, 1.0]))
    array([0.5, 3. , 6. ])
    """
    idx = np.arange(len(beats), dtype=float)
    pos = np.interp(times, beats, idx)
    head = times < beats[0]
    tail = times > beats[-1]
    pos[head] = (times[head] - beats[0]) / (beats[1] - beats[0])
    pos[tail] = idx[-1] + (times[tail] - beats[-1]) / (beats[-1] - beats[-2])
    return pos


def times_of_beats(indices: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Fractional beat indices back to seconds: the inverse of :func:`beat_positions`.

    >>> times_of_beats(np.array([-1.0, 0.5, 4.0]), np.array([0.0, 0.5, 1.0]))
    array([-0.5 ,  0.25,  2.  ])
    """
    idx = np.arange(len(beats), dtype=float)
    out = np.interp(indices, idx, beats)
    head, tail = indices < 0, indices > idx[-1]
    out[head] = beats[0] + indices[head] * (beats[1] - beats[0])
    out[tail] = beats[-1] + (indices[tail] - idx[-1]) * (beats[-1] - beats[-2])
    return out


def choose_grids(onset_beats: np.ndarray, beat_ticks: int) -> dict[int, int]:
    """Subdivisions per beat for every beat that has onsets (keyed by beat index), for beats of
    ``beat_ticks``.

    >>> choose_grids(np.array([0.0, 0.5, 1.0, 1.33, 1.67]), 12)
    {0: 2, 1: 3}
    """
    grids = GRIDS.get(beat_ticks, SIMPLE_GRIDS)
    beat_of = np.floor(onset_beats + EARLY).astype(int)
    chosen: dict[int, int] = {}
    for b in np.unique(beat_of):
        frac = onset_beats[beat_of == b] - b
        costs = {g: float(np.mean(np.abs(frac * g - np.round(frac * g)) / g)) + pen for g, pen in grids.items()}
        chosen[int(b)] = min(costs, key=costs.__getitem__)
    return chosen


def quantize(positions: np.ndarray, grids: dict[int, int], beat_ticks: int, default_grid: int) -> np.ndarray:
    """Beat positions to ticks, each on its beat's grid (``default_grid`` for beats not in ``grids``).

    >>> quantize(np.array([0.02, 0.49, 1.31]), {0: 2, 1: 3}, 12, 2)
    array([ 0,  6, 16])
    """
    beat_of = np.floor(positions + EARLY).astype(int)
    out = np.empty(len(positions), dtype=int)
    for i, (pos, b) in enumerate(zip(positions, beat_of)):
        g = grids.get(int(b), default_grid)
        step = beat_ticks // g
        # An onset up to EARLY before its beat belongs on the beat, never in the beat before.
        out[i] = int(b) * beat_ticks + max(0, int(round((pos - b) * g))) * step
    return out
