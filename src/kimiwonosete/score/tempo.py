"""Tempo marks: where the performed tempo settles at a new value for several bars."""

from __future__ import annotations

import numpy as np

#: A new mark needs the tempo to move by more than this ratio from the current mark...
CHANGE_RATIO = 1.12
#: ...for this many bars in a row (each bar's own tempo beyond half that change, same side).
SETTLE_BARS = 4


def bar_tempi(beat_times: np.ndarray, beats_per_bar: int, quarters_per_beat: float) -> np.ndarray:
    """Quarter notes per minute in each complete bar, from when its beats were played."""
    downbeats = np.asarray(beat_times, dtype=float)[::beats_per_bar]
    durations = np.diff(downbeats)
    return 60.0 * beats_per_bar * quarters_per_beat / np.maximum(durations, 1e-6)


def tempo_marks(beat_times: np.ndarray, beats_per_bar: int, quarters_per_beat: float = 1.0) -> list[tuple[int, int]]:
    """(bar index, quarter notes per minute) at the start and wherever the tempo settles anew.

    Rubato inside a phrase makes no mark: the tempo must stay beyond ``CHANGE_RATIO`` of the
    current mark for ``SETTLE_BARS`` bars.

    >>> beats = np.concatenate([np.arange(0, 16, 0.5), 16 + np.arange(0, 24, 0.75)])  # 120, then 80
    >>> tempo_marks(beats, 4)
    [(0, 120), (8, 80)]
    """
    tempi = bar_tempi(beat_times, beats_per_bar, quarters_per_beat)
    if len(tempi) == 0:
        return []
    current = float(np.median(tempi[:SETTLE_BARS]))
    marks = [(0, int(round(current)))]
    half = np.sqrt(CHANGE_RATIO)
    i = 1
    while i + SETTLE_BARS <= len(tempi):
        window = tempi[i : i + SETTLE_BARS]
        settled = float(np.median(window))
        faster = settled > current * CHANGE_RATIO and (window > current * half).all()
        slower = settled < current / CHANGE_RATIO and (window < current / half).all()
        if faster or slower:
            current = settled
            marks.append((i, int(round(current))))
            i += SETTLE_BARS
        else:
            i += 1
    return marks
