"""The chunk plan and the merge of chunk notes, on synthetic border cases.

Each chunk is simulated as a model would hear it: only the audio in ``[start, end)``, so notes
already sounding when its audio begins appear as fragments starting there, and notes still
sounding when it ends are cut off there.
"""

from __future__ import annotations

import random

import pytest

from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.transcription.chunks import Chunk, merge_chunks, plan_chunks

RATE = 100  # samples per second: chunk bounds in hundredths of a second


def heard(chunk: Chunk, truth: Performance, jitter: float = 0.0, seed: int = 0) -> Performance:
    """What a chunk's model reports of ``truth``: clipped to its audio, onsets moved by up to
    ``jitter`` seconds (differently in each chunk, as context changes a model's estimate)."""
    rng = random.Random(seed * 1000 + chunk.index)
    lo, hi = chunk.start / RATE, chunk.end / RATE
    notes = [
        Note(max(lo, n.onset + rng.uniform(-jitter, jitter)) if n.onset >= lo else lo, min(hi, n.offset), n.pitch, n.velocity)
        for n in truth.notes
        if n.offset > lo and n.onset < hi
    ]
    pedals = [Pedal(max(lo, p.onset), min(hi, p.offset)) for p in truth.pedals if p.offset > lo and p.onset < hi]
    return Performance(notes, pedals, duration=hi - lo)


def merged(truth: Performance, n_samples: int, chunk_s: float = 10.0, margin_s: float = 1.0, **kw) -> Performance:
    plan = plan_chunks(n_samples, RATE, chunk_s, margin_s)
    return merge_chunks(plan, [heard(c, truth, **kw) for c in plan], RATE)


def test_plan_tiles_the_audio_with_margins() -> None:
    for n in (1, 999, 1000, 1100, 1101, 1150, 12345):
        plan = plan_chunks(n, RATE, 10.0, 1.0)
        assert plan[0].core_start == 0 and plan[-1].core_end == n
        assert all(a.core_end == b.core_start for a, b in zip(plan, plan[1:]))
        for c in plan:
            assert c.start == max(0, c.core_start - 100) and c.end == min(n, c.core_end + 100)
            assert c.core_end - c.core_start <= 1100  # a sliver is absorbed, never more


@pytest.mark.parametrize("jitter", [0.0, 0.02, 0.045])
def test_a_note_on_the_border_is_kept_once(jitter: float) -> None:
    truth = Performance([Note(10.0, 10.5, 60, 80), Note(9.99, 10.4, 64, 80), Note(10.01, 10.4, 67, 80)])
    for seed in range(20):
        out = merged(truth, 2000, jitter=jitter, seed=seed)
        assert sorted(n.pitch for n in out.notes) == [60, 64, 67]


def test_a_long_note_across_two_borders_is_one_note() -> None:
    truth = Performance([Note(5.0, 27.0, 48, 70), Note(6.0, 6.5, 72, 90)])
    out = merged(truth, 3000)
    assert [(n.onset, n.offset, n.pitch) for n in out.notes] == [(5.0, 27.0, 48), (6.0, 6.5, 72)]


def test_a_repeated_note_in_the_overlap_stays_two_notes() -> None:
    truth = Performance([Note(9.6, 9.9, 60, 80), Note(10.1, 10.4, 60, 80), Note(10.9, 12.0, 60, 80)])
    out = merged(truth, 2000)
    assert [(n.onset, n.offset) for n in out.notes] == [(9.6, 9.9), (10.1, 10.4), (10.9, 12.0)]


def test_pedal_held_across_a_border_is_one_press() -> None:
    truth = Performance([Note(1.0, 2.0, 60, 80)], [Pedal(8.0, 13.0), Pedal(14.0, 15.0)])
    out = merged(truth, 2000)
    assert [(p.onset, p.offset) for p in out.pedals] == [(8.0, 13.0), (14.0, 15.0)]


@pytest.mark.parametrize("seed", range(5))
def test_random_music_survives_chunking(seed: int) -> None:
    rng = random.Random(seed)
    notes = []
    for pitch in range(40, 90, 3):
        t = rng.uniform(0, 1)
        while t < 55:
            length = rng.choice([0.1, 0.4, 1.5, 4.0, 13.0])
            notes.append(Note(round(t, 3), round(min(t + length, 60.0), 3), pitch, 64))
            t += length + rng.uniform(0.06, 3)
    truth = Performance(notes)
    out = merged(truth, 6000, jitter=0.04, seed=seed)
    assert len(out.notes) == len(truth.notes)
    by_pitch = lambda n: (n.pitch, n.onset)  # noqa: E731
    for got, want in zip(sorted(out.notes, key=by_pitch), sorted(truth.notes, key=by_pitch)):
        assert got.pitch == want.pitch and abs(got.onset - want.onset) <= 0.04 and abs(got.offset - want.offset) < 1e-9


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_plans_give_every_worker_equal_work(workers: int) -> None:
    for n in (999, 1101, 1500, 2500, 3000, 12345, 18000):
        plan = plan_chunks(n, RATE, 10.0, 1.0, workers)
        cores = [c.core_end - c.core_start for c in plan]
        assert plan[0].core_start == 0 and plan[-1].core_end == n
        assert all(a.core_end == b.core_start for a, b in zip(plan, plan[1:]))
        assert len(plan) == 1 or len(plan) % workers == 0
        assert max(cores) - min(cores) <= 1 and max(cores) <= 1100
        assert len(plan) >= len(plan_chunks(n, RATE, 10.0, 1.0))  # never fewer chunks than one worker's plan


def test_three_minutes_on_two_workers_is_four_equal_chunks() -> None:
    """The case measured in issue 14: three 60 s chunks left one of two workers idle for the third."""
    plan = plan_chunks(180 * RATE, RATE, 60.0, 3.0, workers=2)
    assert [(c.core_start, c.core_end) for c in plan] == [(0, 4500), (4500, 9000), (9000, 13500), (13500, 18000)]


def test_short_inputs_stay_in_one_process() -> None:
    from kimiwonosete.transcription.chunks import worker_count

    assert [worker_count(s * RATE, RATE, 60.0, 2) for s in (10, 63, 100, 119, 120, 180, 600)] == [1, 1, 1, 1, 2, 2, 2]
    assert worker_count(600 * RATE, RATE, 60.0, 16) == 10 and worker_count(600 * RATE, RATE, 60.0, 1) == 1
