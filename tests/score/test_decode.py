"""The learned decoder's beat tracking: paths for several bar lengths decoded side by side."""

from __future__ import annotations

import numpy as np

from kimiwonosete.score.learned import decode

SEED = 7


def test_paths_decoded_side_by_side_are_those_decoded_one_by_one():
    rng = np.random.default_rng(SEED)
    chords = np.cumsum(rng.uniform(0.2, 0.35, 80))  # uneven chords, beats among them
    p_beat = np.where(np.arange(80) % 2 == 0, rng.uniform(0.6, 0.95, 80), rng.uniform(0.05, 0.3, 80))
    p_down = p_beat * np.where(np.arange(80) % 6 == 0, 0.9, 0.1)
    n = int(chords[-1] * decode.FPS) + 20
    periods = np.full(n, 0.55 * decode.FPS)
    together = decode.track(chords, p_beat, p_down, periods, n - 1)
    assert set(together) == set(decode.BAR_BEATS)
    for m in decode.BAR_BEATS:
        score, frames = decode.track(chords, p_beat, p_down, periods, n - 1, (m,))[m]
        assert score == together[m][0]
        assert np.array_equal(frames, together[m][1])
    # The beats are the likely chords: every other one, 0.55 s apart on average.
    frames = together[3][1]
    assert abs(np.median(np.diff(frames)) / decode.FPS - 0.55) < 0.1
