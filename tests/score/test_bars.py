"""The bar model: beat rows that read a transposed piece the same, shipped weights, and bar
lines chosen from per-beat evidence."""

from __future__ import annotations

import numpy as np
import pytest

from kimiwonosete.examples import BEATS_PER_BAR, TEMPO_QPM, example_midi
from kimiwonosete.score.learned import bars


def _minuet():
    midi = example_midi()
    notes = sorted((n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes)
    return tuple(np.array(c) for c in zip(*notes))


def _minuet_beats(onset):
    beat_s = 60.0 / TEMPO_QPM
    return 0.3 + beat_s * np.arange(int((onset.max() - 0.3) / beat_s) + 1)


def test_beat_rows_are_finite_and_the_same_for_a_transposed_piece():
    onset, offset, pitch, velocity = _minuet()
    beats = _minuet_beats(onset)
    x = bars.beat_features(beats, onset, offset, pitch, velocity)
    assert x.shape == (len(beats), bars.N_FEATURES) and np.isfinite(x).all()
    assert np.allclose(x, bars.beat_features(beats, onset, offset, pitch + 5, velocity))
    assert not np.allclose(x, bars.beat_features(beats + 0.25, onset, offset, pitch, velocity))


def test_the_shipped_bar_model_finds_the_minuets_bars_on_its_beats():
    onset, offset, pitch, velocity = _minuet()
    beats = _minuet_beats(onset)
    post = bars.bar_posteriors(bars.beat_features(beats, onset, offset, pitch, velocity))
    assert post["downbeat"].shape == (len(beats),) and np.allclose(np.exp(post["beats"]).sum(axis=1), 1, atol=1e-4)
    assert bars.best_bars(post["downbeat"], post["beats"]) == (BEATS_PER_BAR, 0)
    assert post["compound"].sum() < 0  # 3/4, not 9/8


# Not "half": every other beat of these 8 bars (56 BPM) reads as the beat level (0.73); the
# level head's limits are in MODEL_CARD.md.
@pytest.mark.parametrize("level", ["beat", "double"])
def test_the_shipped_bar_model_reads_the_level_of_a_grid_over_the_minuet(level):
    onset, offset, pitch, velocity = _minuet()
    beats = _minuet_beats(onset)
    grid = {"beat": beats, "double": np.sort(np.r_[beats, (beats[:-1] + beats[1:]) / 2]), "half": beats[::2]}[level]
    post = bars.bar_posteriors(bars.beat_features(grid, onset, offset, pitch, velocity))
    assert bars.LEVELS[int(np.argmax(post["level"].mean(axis=0)))] == level


def test_best_bars_follows_the_meter_evidence_where_bar_lines_are_unclear():
    down = np.zeros(24)
    two = np.log(np.tile([0.8, 0.1, 0.1], (24, 1)))
    assert bars.best_bars(down, two)[0] == 2
    assert bars.best_bars(down, two[:, ::-1])[0] == 4


def test_a_beat_too_many_or_too_few_puts_the_bar_lines_back_in_step():
    beats = np.arange(30.0)
    # Three beats a bar, as heard: a beat too many after the 13th, one missing before the 22nd.
    pos = np.r_[np.arange(14) % 3, (np.arange(14, 22) - 1) % 3, np.arange(22, 30) % 3]
    down = np.where(pos == 0, 8.0, -8.0)  # 5 beats out of step cost more than two steps out (2 * OUT_OF_STEP)
    found = bars.bar_positions(down, 3)
    assert ((found == 0) == (pos == 0)).all()
    mended, phase = bars.in_step(beats, found, 3)
    assert len(mended) == len(beats)  # one dropped, one added
    assert mended[phase::3] == pytest.approx(np.sort(np.r_[beats[pos == 0], 21.5]))  # the missing beat starts a bar
    # Where falling out of step costs more than the evidence, the bar lines keep the first ones' step.
    assert (np.diff(bars.bar_positions(down, 3, out_of_step=1e3)) % 3 == 1).all()
