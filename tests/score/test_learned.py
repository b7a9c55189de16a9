"""The shipped score model: it loads from the package, reads the example minuet's metre, key and
bar lines, and gives the same answer every time."""

from __future__ import annotations

import numpy as np

from kimiwonosete.examples import BEATS_PER_BAR, TEMPO_QPM, example_midi
from kimiwonosete.notes import Note, Performance
from kimiwonosete.score.build import build_score
from kimiwonosete.score.learned import staves
from kimiwonosete.score.learned.decode import analyse
from kimiwonosete.score.learned.net import HEADS, packaged_weights, shipped_weights


def _minuet() -> Performance:
    midi = example_midi()
    notes = [Note(n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes]
    return Performance(notes, [], duration=max(n.offset for n in notes))


def test_shipped_weights_load_from_the_package():
    w = shipped_weights()
    assert w["out.b"].shape == (sum(HEADS.values()),)
    assert all(np.isfinite(v).all() for v in w.values())
    w = packaged_weights(staves.WEIGHTS)
    assert w["inp.w"].shape[0] == staves.N_FEATURES and w["out.b"].shape == (1,)
    assert all(np.isfinite(v).all() for v in w.values())


def test_the_minuet_is_three_four_in_g_major_with_its_bar_lines():
    perf = _minuet()
    score = build_score(perf, "Minuet")
    assert str(score.time_signature) == "3/4"
    assert (score.key.fifths, score.key.mode) == (1, "major")
    # Bar lines where the minuet's bars start: 0.3 s + 3 beats at 112 per minute each.
    bar_s = BEATS_PER_BAR * 60.0 / TEMPO_QPM
    downbeats = np.array(score.downbeat_times)
    first = int(np.argmin(np.abs(downbeats - 0.3)))
    expected = 0.3 + bar_s * np.arange(8)
    assert np.abs(downbeats[first : first + 8] - expected).max() < 0.07


def test_the_minuet_hands_go_to_their_staves():
    midi = example_midi()
    hand = {(round(n.start, 6), n.pitch): h for h, inst in enumerate(midi.instruments) for n in inst.notes}
    perf = _minuet()
    staff = analyse(perf.notes, perf.duration).staff
    truth = [hand[(round(n.onset, 6), n.pitch)] for n in perf.notes]
    assert np.mean(np.array(staff) == np.array(truth)) >= 0.95


def test_inference_is_deterministic():
    perf = _minuet()
    a, b = analyse(perf.notes, perf.duration), analyse(perf.notes, perf.duration)
    assert np.array_equal(a.beats, b.beats) and a.staff == b.staff
    assert a.time_signature == b.time_signature and a.phase == b.phase
