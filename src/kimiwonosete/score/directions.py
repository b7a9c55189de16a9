"""Directions read from the playing: sustain-pedal marks and dynamics, on the score's tick grid."""

from __future__ import annotations

import numpy as np

from kimiwonosete.score.model import TICKS_PER_QUARTER

MIN_PEDAL_TICKS = TICKS_PER_QUARTER // 2  # a press shorter than an eighth gets no mark
#: Dynamic levels and the MIDI velocity each stands for (MuseScore's playback values).
LEVELS = (("pp", 33), ("p", 49), ("mp", 64), ("mf", 80), ("f", 96), ("ff", 112))
LOUD_SHARE = 75  # a bar's loudness: this percentile of its velocities (the melody, not the filling)
SETTLE_BARS = 3  # a new dynamic is marked when this many bars running are at the new level


def pedal_marks(down: np.ndarray, up: np.ndarray, first: int) -> tuple[tuple[int, int], ...]:
    """Pedal intervals (down, up) in ticks, as a score marks them.

    Presses shorter than ``MIN_PEDAL_TICKS`` are dropped; a press that the quantized grid makes
    overlap the previous one releases it at that tick (a pedal change); nothing before ``first``
    (the first written tick).

    >>> pedal_marks(np.array([0, 46, 100]), np.array([48, 60, 103]), 0)
    ((0, 46), (46, 60))
    """
    out: list[tuple[int, int]] = []
    for d, u in sorted(zip(np.maximum(down, first).tolist(), up.tolist())):
        if u - d < MIN_PEDAL_TICKS:
            continue
        if out and d < out[-1][1]:
            if d - out[-1][0] < MIN_PEDAL_TICKS:  # two presses in one: one long one
                out[-1] = (out[-1][0], max(u, out[-1][1]))
                continue
            out[-1] = (out[-1][0], d)
        out.append((d, u))
    return tuple(out)


def level_of(velocity: float) -> int:
    """Index into ``LEVELS`` of the dynamic nearest to a MIDI velocity.

    >>> LEVELS[level_of(70)][0], LEVELS[level_of(20)][0], LEVELS[level_of(127)][0]
    ('mp', 'pp', 'ff')
    """
    return int(np.argmin([abs(velocity - v) for _, v in LEVELS]))


def dynamic_marks(bar_of_note: np.ndarray, velocities: np.ndarray, onsets: np.ndarray) -> tuple[tuple[int, str], ...]:
    """Dynamics (tick, mark): one where the music starts, then one wherever the level changes
    and stays changed for ``SETTLE_BARS`` bars. Each goes on the bar's first onset (ticks).

    >>> bars = np.repeat(np.arange(8), 4)
    >>> vel = np.repeat([50, 50, 50, 50, 95, 97, 96, 95], 4)
    >>> dynamic_marks(bars, vel, bars * 48)
    ((0, 'p'), (192, 'f'))
    """
    if not len(bar_of_note):
        return ()
    bars = np.unique(bar_of_note)
    level = {int(b): level_of(float(np.percentile(velocities[bar_of_note == b], LOUD_SHARE))) for b in bars}
    start = {int(b): int(onsets[bar_of_note == b].min()) for b in bars}
    order = [int(b) for b in bars]
    marks = [(start[order[0]], level[order[0]])]
    for k, b in enumerate(order[1:], start=1):
        run = [level[c] for c in order[k:k + SETTLE_BARS]]
        if len(run) == SETTLE_BARS and len(set(run)) == 1 and run[0] != marks[-1][1]:
            marks.append((start[b], run[0]))
    return tuple((tick, LEVELS[i][0]) for tick, i in marks)
