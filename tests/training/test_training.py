"""Training: data preparation on tiny generated scores, the renderer, the bar model's beat grids,
a few training steps of both models, and the exported weights running the same in NumPy as in torch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.examples import example_midi
from kimiwonosete.notes import Note, Performance
from kimiwonosete.score import key
from kimiwonosete.score.build import build_score
from kimiwonosete.score.learned import bars, staves
from kimiwonosete.score.learned.features import N_FEATURES, note_features
from kimiwonosete.score.learned.net import forward
from kimiwonosete.score.learned.vocab import METERS
from training import train_bars as bars_training
from training import train_keys as keys_training
from training import train_staves as staves_training
from training.corpus import read_lieder, read_mutopia_midi
from training.model import ScoreNet
from training.prepare import _save
from training.render import TARGETS, render
from training.train import batches, build_set, held_out, losses
from training.train import main as train_main


def _two_staff_midi(path: Path) -> Path:
    """LilyPond-like MIDI: a conductor track with 3/4 and D major, then an upper and a lower staff."""
    f = mido.MidiFile(ticks_per_beat=384)
    meta = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
                           mido.MetaMessage("key_signature", key="D", time=0)])
    upper, lower = mido.MidiTrack(), mido.MidiTrack()
    for bar in range(8):
        for beat in range(3):
            for half in range(2):  # eighths above
                upper.extend([mido.Message("note_on", note=74 + 2 * half, velocity=80, time=0),
                              mido.Message("note_off", note=74 + 2 * half, velocity=0, time=192)])
        lower.extend([mido.Message("note_on", note=50, velocity=70, time=0),
                      mido.Message("note_off", note=50, velocity=0, time=3 * 384)])
    f.tracks.extend([meta, upper, lower])
    f.save(path)
    return path


def test_mutopia_midi_gives_beats_bars_staves_and_key(tmp_path):
    piece = read_mutopia_midi(_two_staff_midi(tmp_path / "t.mid"))
    assert piece is not None and len(piece) == 8 * 7
    assert set(piece.meter.tolist()) == {METERS.index((3, 4))}
    assert set(piece.key.tolist()) == {2}
    low = piece.pitch == 50
    assert piece.staff[low].tolist() == [1] * 8 and set(piece.staff[~low].tolist()) == {0}
    assert piece.downbeat[low].all()  # the bass plays each downbeat
    assert piece.beat[~low].sum() == 8 * 3  # one eighth of each pair is on the beat
    assert np.allclose(piece.phase[~low & ~piece.beat], 0.5)


def test_lieder_reader_reads_our_own_musicxml(tmp_path):
    """The minuet's score as MusicXML (our engraver's, two staves) read back as training rows."""
    midi = example_midi()
    perf = Performance([Note(n.start, n.end, n.pitch, n.velocity) for i in midi.instruments for n in i.notes], [], 12.0)
    score = build_score(perf, "Minuet", model="heuristic")
    path = tmp_path / "minuet.musicxml"
    path.write_bytes(musicxml_bytes(score))
    piece = read_lieder(path)
    assert piece is not None and len(piece) == perf.notes.__len__()
    assert set(piece.meter.tolist()) == {METERS.index((3, 4))}
    assert set(piece.key.tolist()) == {1}  # G major
    fsharp = piece.pitch % 12 == 6
    assert fsharp.any() and set(piece.tpc[fsharp].tolist()) == {6}  # F#, not Gb
    assert set(piece.staff.tolist()) == {0, 1}
    assert piece.downbeat.sum() >= 8  # a note on every bar's first beat


def _piece(tmp_path):
    return read_mutopia_midi(_two_staff_midi(tmp_path / "t.mid"))


def test_renderer_is_seeded_and_keeps_targets_aligned(tmp_path):
    piece = _piece(tmp_path)
    a, b, c = render(piece, 7), render(piece, 7), render(piece, 8)
    assert np.array_equal(a.onset, b.onset) and np.array_equal(a.pitch, b.pitch)
    assert not np.array_equal(a.onset, c.onset)
    assert np.all(np.diff(a.onset) >= 0) and np.all(a.offset > a.onset)
    known = a.targets["downbeat"] >= 0
    # Downbeats stay on the lowest notes (unless transposition moved the whole piece).
    lowest = a.pitch == a.pitch.min()
    assert (a.targets["downbeat"][known & lowest] == 1).mean() > 0.8
    # Tempo varies: beat-to-beat intervals are not all equal, but stay within a musical range.
    down_times = a.onset[(a.targets["downbeat"] == 1) & lowest]
    bars = np.diff(down_times)
    assert bars.std() > 0.01 and 0.5 < np.median(bars) < 6.0


def test_a_few_training_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    xs, ys = build_set([_piece(tmp_path)], renders=2, seed=0)
    assert xs[0].shape[1] == N_FEATURES and ys[0].shape[1] == len(TARGETS)
    net = ScoreNet(16, (1, 2, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    x0, y0 = next(batches(xs, ys, 32, 4, rng))
    first = losses(net(x0), y0)[0].item()
    for _ in range(40):
        xb, yb = next(batches(xs, ys, 32, 4, rng))
        loss, _ = losses(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses(net(x0), y0)[0].item() < 0.7 * first


def test_exported_weights_run_the_same_in_numpy():
    torch.manual_seed(1)
    net = ScoreNet(24, (1, 2, 4, 8))
    x = np.random.default_rng(0).normal(size=(200, N_FEATURES)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)[None])[0].numpy()
    out = np.concatenate(list(forward(net.export(), x).values()), axis=1)
    assert np.abs(out - ref).max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_features_of_a_rendering_are_finite(tmp_path, seed):
    r = render(_piece(tmp_path), seed)
    x = note_features(r.onset, r.offset, r.pitch, r.velocity)
    assert np.isfinite(x).all() and x.shape == (len(r.onset), N_FEATURES)
    x = staves.staff_features(r.onset, r.offset, r.pitch, r.velocity)
    assert np.isfinite(x).all() and x.shape == (len(r.onset), staves.N_FEATURES)
    assert np.array_equal(x[:, :N_FEATURES], note_features(r.onset, r.offset, r.pitch, r.velocity))


def test_the_sounding_notes_tell_the_held_bass_under_the_tune():
    """A bass note held for a bar under six eighths of a tune two octaves and more above it."""
    tune = [(bar * 1.5 + i * 0.25, 74 + 2 * (i % 2)) for bar in range(4) for i in range(6)]
    bass = [(bar * 1.5, 50) for bar in range(4)]
    notes = sorted([(t, t + 0.2, p) for t, p in tune] + [(t, t + 1.45, p) for t, p in bass])
    onset, offset, pitch = (np.array(c) for c in zip(*notes))
    x = staves.sounding_features(onset, offset, pitch)
    up = pitch >= 74
    assert (x[up, 0] == 0.2).all()  # one note sounds below each tune note: the bass
    assert np.allclose(x[up, 2] * 12, pitch[up] - 50)  # ... this far down
    assert (x[~up, 0] == 0).all() and (x[~up, 1] == 0.2).all()  # the bass: only its chord's tune note above
    assert np.allclose(x[~up, 6], 0) and np.allclose(x[up & (pitch == 76), 6], 1)  # lowest and highest of the second


def test_a_short_piece_keeps_a_musical_tempo_whatever_the_seed(tmp_path):
    """The tempo drift is smoothed over 16 bars: over an 8-bar piece it must stay a drift, not
    scale the whole piece far outside the base tempo's range (beats of 0.25-2 s)."""
    piece = _piece(tmp_path)
    for seed in range(60):
        r = render(piece, seed)
        on_down = r.targets["downbeat"] == 1
        down = r.onset[on_down & (r.pitch == r.pitch[on_down].min())]  # the bass, once a bar
        beat_s = np.median(np.diff(down)) / 3
        assert 0.15 < beat_s < 3.5, (seed, beat_s)


def test_the_played_grid_has_a_beat_per_beat_and_its_bar_lines(tmp_path):
    """8 bars of 3/4: 24 beats, a bar line on every third, each bar of 3 beats."""
    grid, down, meter = bars_training.played_grid(render(_piece(tmp_path), 3))
    assert len(grid) == 24 and np.all(np.diff(grid) > 0.2)
    assert np.nonzero(down == 1)[0].tolist() == list(range(0, 24, 3))
    assert set(meter.tolist()) == {METERS.index((3, 4))}


def test_a_grid_is_labelled_by_its_level_and_the_played_beats_it_stands_for(tmp_path):
    times, down, meter = bars_training.played_grid(render(_piece(tmp_path), 3))
    three, beat, double, half = bars.BAR_BEATS.index(3), *(bars.LEVELS.index(k) for k in ("beat", "double", "half"))
    y = bars_training.grid_targets(times, times, down, meter)
    assert (y[:, 2] == beat).all() and np.array_equal(y[:, 0], down) and (y[:, 1] == three).all() and (y[:, 3] == 0).all()
    mid = np.sort(np.r_[times, (times[:-1] + times[1:]) / 2])
    y = bars_training.grid_targets(mid, times, down, meter)
    assert (y[:, 2] == double).all() and np.nonzero(y[:, 0] == 1)[0].tolist() == list(range(0, 47, 6))
    assert (y[:, 1] == -1).all() and (y[:, 3] == -1).all()  # 6 beats in the bar: no class; no compound answer
    y = bars_training.grid_targets(times[::2], times, down, meter)
    assert (y[:, 2] == half).all() and (y[:, 1] == -1).all()  # 3/4 at half speed: no whole number of beats
    assert y[:, 0].tolist() == [int(i % 3 == 0) for i in range(0, 24, 2)]
    skewed = times[0] + (times - times[0]) * 1.5  # a grid at neither level
    assert (bars_training.grid_targets(skewed, times, down, meter)[:, 2] == -1).all()


def test_a_few_staff_model_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    xs, ys = build_set([_piece(tmp_path)], renders=2, seed=0, features=staves.staff_features)
    net = ScoreNet(16, (1, 2, 4), staves.N_FEATURES, staves.HEADS)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    x0, y0 = next(batches(xs, ys, 32, 4, rng))
    first = losses(net(x0), y0, staves.HEADS)[0].item()
    for _ in range(40):
        xb, yb = next(batches(xs, ys, 32, 4, rng))
        loss, _ = losses(net(xb), yb, staves.HEADS)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses(net(x0), y0, staves.HEADS)[0].item() < 0.5 * first


def test_a_few_bar_model_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    xs, ys = bars_training.build_set([_piece(tmp_path)], renders=2, seed=0)
    assert xs[0].shape[1] == bars.N_FEATURES and ys[0].shape[1] == len(bars.HEADS)
    net = ScoreNet(16, (1, 2, 4), bars.N_FEATURES, bars.HEADS)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    x0, y0 = next(batches(xs, ys, 16, 4, rng))
    first = bars_training.losses(net(x0), y0)[0].item()
    for _ in range(40):
        xb, yb = next(batches(xs, ys, 16, 4, rng))
        loss, _ = bars_training.losses(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert bars_training.losses(net(x0), y0)[0].item() < 0.7 * first


def _tiny_cache(tmp_path) -> Path:
    """A cached Mutopia part of three copies of the tiny piece: two to train on, one held out."""
    piece = _piece(tmp_path)
    names = [f"piece{i}" for i in range(200)]
    dev = next(n for n in names if held_out(n))
    items = [replace(piece, name=n) for n in [*[n for n in names if not held_out(n)][:2], dev]]
    (tmp_path / "cache").mkdir()
    _save(tmp_path / "cache" / "mutopia.npz", items)
    return tmp_path / "cache"


@pytest.mark.parametrize("command", [train_main, bars_training.main, staves_training.main],
                         ids=["notes", "bars", "staves"])
def test_each_training_command_runs_end_to_end_on_a_tiny_corpus(tmp_path, command):
    """From the cached corpus (two pieces to train on, one held out) to curves, config and weights."""
    cache = _tiny_cache(tmp_path)
    out = tmp_path / "run"
    assert command(["unused", "--out", str(out), "--cache", str(cache), "--parts", "mutopia",
                    "--epochs", "2", "--renders", "2", "--channels", "8", "--length", "32", "--batch", "2"]) == 0
    curves = (out / "curves.tsv").read_text().splitlines()
    assert len(curves) == 3 and "dev_loss" in curves[0]
    assert json.loads((out / "config.json").read_text())["epochs"] == "2"
    weights = next(out.glob("*.npz"))
    assert set(np.load(weights).files) and weights.name in {"score_tcn.npz", bars.WEIGHTS, staves.WEIGHTS}


def test_the_key_weights_fit_from_a_tiny_corpus(tmp_path):
    """From the cached corpus to the figures and weights that ``key.key_scores`` reads."""
    cache = _tiny_cache(tmp_path)
    out = tmp_path / "run"
    assert keys_training.main(["unused", "--out", str(out), "--cache", str(cache), "--parts", "mutopia",
                               "--renders", "2"]) == 0
    figures = json.loads((out / "figures.json").read_text())
    assert figures["renderings"] == 4 and figures["dev renderings"] == 2
    assert figures["train, learned"] == 1.0  # every rendering of the D major piece read in D major
    data = np.load(out / key.KEY_WEIGHTS)
    weights = {k: data[k] for k in data.files}
    assert weights["w"].shape == (2, 13) and weights["b"].shape == (2,)
    notes = render(_piece(tmp_path), 0)
    scores = key.key_scores(key.key_inputs(notes.onset, notes.offset, notes.pitch), weights)
    assert scores.shape == (len(key.KEYS),) and np.isfinite(scores).all()
