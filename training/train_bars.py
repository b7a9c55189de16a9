"""Train and export the bar model (``kimiwonosete.score.learned.bars``) in one command.

    python -m training.train_bars ../shared/train --out training-runs/bars [--seed S] [--export]

Each training piece is rendered ``--renders`` times (seeds apart from the note model's). The
grid of each rendering in turn (``RENDER_GRIDS``) is its beats as played (the chords its score
puts on beats, gaps filled at the local period) or the beats the decoder tracks in it with the
shipped note model, around its local period, twice it or half it. Each beat's targets: whether
it starts a bar, how many beats its bar holds, the grid's level (decoded grids only) and
whether the beats divide into three (grids at the beat level). Random ``--length``-beat crops
train the stack; the held-out pieces of the note model (``training.train.held_out``) report,
after every epoch, the per-beat accuracies and the bar lines read by
:func:`kimiwonosete.score.learned.bars.best_bars`, the grids' levels and simple or compound
read right (``curves.tsv``, by ``training.train.fit``).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch.nn import functional as F

from kimiwonosete.score.learned import bars, decode
from kimiwonosete.score.learned.features import chord_ids
from kimiwonosete.score.learned.net import log_softmax, split_heads
from kimiwonosete.score.learned.vocab import METERS, UNKNOWN
from kimiwonosete.score.model import TimeSignature
from training.model import ScoreNet
from training.render import Rendered, render
from training.train import command_line, train_command
from training.train import evaluate as train_evaluate

DILATIONS = (1, 2, 4, 8, 16) * 2  # receptive field 1 + 2 * 2 * 31 = 125 beats
BEAT_CHORD_S = 0.08  # a rendered chord's notes spread over at most ~0.05 s either side
GAP = 1.6  # an interval this many local periods long holds unplayed beats
SEED_OFFSET = 7_777  # the bar model's renderings differ from the note model's
#: beats in the bar (the ``beats`` head's class) and compound or not of each time signature the corpus knows
BEATS_PER_BAR = np.array([TimeSignature(*ts).beats_per_bar for ts in METERS])
BAR_CLASS = np.array([bars.BAR_BEATS.index(b) if b in bars.BAR_BEATS else UNKNOWN for b in BEATS_PER_BAR])
COMPOUND = np.array([int(TimeSignature(*ts).compound) for ts in METERS])


def played_grid(perf: Rendered) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beat times, downbeat targets, time signatures as ``METERS`` indices) of a rendering: a
    beat per chord of notes its score puts on a beat; beats where nothing is played (rests,
    dropped notes) are filled in at the local period with unknown downbeat targets."""
    on = perf.targets["beat"] == 1
    t = perf.onset[on]
    if len(t) < 4:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    group = chord_ids(t, BEAT_CHORD_S)
    k = int(group[-1]) + 1
    times = np.array([np.median(c) for c in np.split(t, np.flatnonzero(np.diff(group)) + 1)])
    down = np.zeros(k, np.int64)
    np.maximum.at(down, group, perf.targets["downbeat"][on].astype(np.int64))
    meter = np.full(k, UNKNOWN, np.int64)
    meter[group] = perf.targets["meter"][on]
    out_t, out_d, out_m = [times[0]], [down[0]], [meter[0]]
    for i in range(1, k):
        gaps = np.diff(times[max(0, i - 5): i + 5])
        local = float(np.median(gaps)) if len(gaps) else times[i] - times[i - 1]
        n_in = int(round((times[i] - times[i - 1]) / local)) if times[i] - times[i - 1] > GAP * local else 1
        for j in range(1, n_in):
            out_t.append(times[i - 1] + (times[i] - times[i - 1]) * j / n_in)
            out_d.append(UNKNOWN)
            out_m.append(meter[i])
        out_t.append(times[i])
        out_d.append(down[i])
        out_m.append(meter[i])
    return np.array(out_t), np.array(out_d, np.int64), np.array(out_m, np.int64)


#: the grid of each rendering of a piece in turn: the played beats (no level target, as no
#: decoder gives so clean a grid), then what the decoder tracks around the note model's local
#: period, twice it and half it (``decode.beat_grid``), each labelled by the level it is at
RENDER_GRIDS = (None, 1.0, None, 2.0, None, 0.5)
MATCH_S = 0.07  # a decoded beat this close to a played one stands for it (the beat F1 tolerance)
LEVEL_TOLERANCE = 0.3  # octaves between a grid's period and a level's


def grid_targets(beats: np.ndarray, times: np.ndarray, down: np.ndarray, meter: np.ndarray) -> np.ndarray:
    """(n, 4) targets (downbeat, beats-in-bar class, level class, compound) of a grid of
    ``beats`` against the played grid (``times``, ``down``, ``meter`` from :func:`played_grid`):
    its level from the ratio of their periods, and each beat's targets from the played beat it
    stands for (within ``MATCH_S``)."""
    played = np.interp(beats, times[1:], np.diff(times))
    octaves = float(np.median(np.log2(played / np.maximum(np.diff(beats, append=2 * beats[-1] - beats[-2]), 1e-3))))
    k = int(round(octaves))
    level = {0: "beat", 1: "double", -1: "half"}.get(k) if abs(octaves - k) < LEVEL_TOLERANCE else None
    j = decode.nearest(times, beats)
    matched = np.abs(times[j] - beats) <= MATCH_S
    d = np.where(matched, down[j], 0 if level == "double" else UNKNOWN)  # a beat between two starts no bar
    # Beats in the bar at the grid's level (a 3-beat bar has none at half level).
    n = np.where((meter[j] >= 0) & (level is not None), BEATS_PER_BAR[np.maximum(meter[j], 0)] * 2.0**k, 0)
    cls = np.array([bars.BAR_BEATS.index(int(v)) if v in bars.BAR_BEATS else UNKNOWN for v in n], dtype=np.int64)
    compound = np.where((meter[j] >= 0) & (level == "beat"), COMPOUND[np.maximum(meter[j], 0)], UNKNOWN)
    lv = np.full(len(beats), bars.LEVELS.index(level) if level else UNKNOWN)
    return np.stack([d, cls, lv, compound], axis=1).astype(np.int64)


def build_set(pieces, renders: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Beat features and targets ((n, 4): downbeat, beats-in-bar class, level class, compound)
    of every rendering of every piece."""
    xs, ys = [], []
    for i, piece in enumerate(pieces):
        for r in range(renders):
            perf = render(piece, (seed + SEED_OFFSET) * 1_000_003 + i * 101 + r)
            times, down, meter = played_grid(perf)
            if len(times) < 8:
                continue
            factor = RENDER_GRIDS[r % len(RENDER_GRIDS)]
            if factor is None:
                known = meter >= 0
                y = np.stack([down, np.where(known, BAR_CLASS[np.maximum(meter, 0)], UNKNOWN), np.full(len(times), UNKNOWN),
                              np.where(known, COMPOUND[np.maximum(meter, 0)], UNKNOWN)], axis=1)
            else:
                # What the decoder tracks around ``factor`` times the note model's local period.
                ev = decode.evidence(perf.onset, perf.offset, perf.pitch, perf.velocity, float(perf.offset.max()))
                found = decode.beat_grid(ev, perf.onset, perf.offset, factor)
                if found is None or len(found[0]) < 8:
                    continue
                y = grid_targets(found[0], times, down, meter)
                times = found[0]
            xs.append(bars.beat_features(times, perf.onset, perf.offset, perf.pitch, perf.velocity))
            ys.append(y.astype(np.int64))
    return xs, ys


def losses(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, tuple[float, int]]]:
    """The heads' summed losses, and per head (right, known) counts."""
    total = out.new_zeros(())
    stats = {}
    for column, (name, z) in enumerate(split_heads(out, bars.HEADS).items()):
        t = y[..., column]  # the targets' columns follow the heads
        known = t != UNKNOWN
        if not known.any():
            continue
        z, t = z[known], t[known]
        if z.shape[-1] == 1:
            total = total + F.binary_cross_entropy_with_logits(z[:, 0], t.float())
            stats[name] = (float(((z[:, 0] > 0).long() == t).sum()), int(known.sum()))
        else:
            total = total + F.cross_entropy(z, t)
            stats[name] = (float((z.argmax(-1) == t).sum()), int(known.sum()))
    return total, stats


def evaluate(net: ScoreNet, xs, ys) -> dict[str, float]:
    """Per-beat accuracies (``training.train.evaluate``), and per rendering: whether the bar lines
    read by ``best_bars`` are the annotated ones (the share of known downbeats matched), its beats
    in the bar, the grid's level (its beats' summed level log probabilities) and simple or
    compound (beat-level grids)."""
    right: dict[str, list[float]] = {"bars": [], "meter": [], "grid_level": [], "grid_compound": []}

    def read(out: np.ndarray, y: np.ndarray) -> None:
        post = split_heads(out, bars.HEADS)
        m, phase = bars.best_bars(post["downbeat"][:, 0], log_softmax(post["beats"]))
        known = y[:, 0] != UNKNOWN
        guess = (np.arange(len(y)) - phase) % m == 0
        if known.any() and (y[known, 0] == 1).any():
            right["bars"].append(float((guess[known] == (y[known, 0] == 1)).mean()))
        cls = y[y[:, 1] != UNKNOWN, 1]
        if len(cls):
            right["meter"].append(float(bars.BAR_BEATS[np.bincount(cls).argmax()] == m))
        if y[0, 2] != UNKNOWN:
            right["grid_level"].append(float(int(log_softmax(post["level"]).sum(axis=0).argmax()) == int(y[0, 2])))
        comp = y[y[:, 3] != UNKNOWN, 3]
        if len(comp):
            right["grid_compound"].append(float((post["compound"][:, 0].sum() > 0) == (comp.mean() > 0.5)))

    summary = train_evaluate(net, xs, ys, losses, bars.HEADS, read)
    return {**summary, **{k: float(np.mean(v)) if v else float("nan") for k, v in right.items()}}


def main(argv: list[str] | None = None) -> int:
    # 96 channels, 8 epochs against 48 and 5: dev loss 0.893 against 0.934; on ASAP and MAPS
    # no better beyond the spread between seeds (MODEL_CARD.md). The first bar model, on
    # beat-level grids only, was past its best after 5 of 10 epochs (dev loss 0.624, then 0.740).
    ap = command_line(__doc__, bars.WEIGHTS, epochs=8, channels=96, length=256, batch=16, renders=len(RENDER_GRIDS),
                      length_help="beats per training crop")
    args = ap.parse_args(argv)
    return train_command(args, "bars", build_set, len(RENDER_GRIDS),  # the held-out pieces: every kind of grid
                         lambda: ScoreNet(args.channels, DILATIONS, bars.N_FEATURES, bars.HEADS), losses, evaluate,
                         "beats")


if __name__ == "__main__":
    sys.exit(main())
