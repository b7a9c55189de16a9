"""Train and export the bar model (``kimiwonosete.score.learned.bars``) in one command.

    python -m training.train_bars ../shared/train --out training-runs/bars [--seed S] [--export]

Each training piece is rendered ``--renders`` times (seeds apart from the note model's); its
beats as played (the chords its score puts on beats, gaps filled at the local period) become
the grid, and each beat's targets are whether it starts a bar and how many beats its bar holds.
Random ``--length``-beat crops train the stack; the held-out pieces of the note model
(``training.train.held_out``) report, after every epoch, the per-beat accuracies and the bar
lines read by :func:`kimiwonosete.score.learned.bars.best_bars` (``curves.tsv``, by ``training.train.fit``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from kimiwonosete.score.learned import bars
from kimiwonosete.score.learned.features import chord_ids
from kimiwonosete.score.learned.net import log_softmax
from kimiwonosete.score.learned.vocab import METERS, UNKNOWN
from kimiwonosete.score.model import TimeSignature
from training.model import ScoreNet
from training.prepare import load_part
from training.render import Rendered, render
from training.train import _write_weights, fit, held_out

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "src/kimiwonosete/score/learned" / bars.WEIGHTS
DILATIONS = (1, 2, 4, 8, 16) * 2  # receptive field 1 + 2 * 2 * 31 = 125 beats
BEAT_CHORD_S = 0.08  # a rendered chord's notes spread over at most ~0.05 s either side
GAP = 1.6  # an interval this many local periods long holds unplayed beats
SEED_OFFSET = 7_777  # the bar model's renderings differ from the note model's
#: beats in the bar (the ``beats`` head's class) of each time signature the corpus knows
BAR_CLASS = np.array([bars.BAR_BEATS.index(TimeSignature(*ts).beats_per_bar)
                      if TimeSignature(*ts).beats_per_bar in bars.BAR_BEATS else UNKNOWN for ts in METERS])


def played_grid(perf: Rendered) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beat times, downbeat targets, beats-in-bar class targets) of a rendering: a beat per chord
    of notes its score puts on a beat; beats where nothing is played (rests, dropped notes) are
    filled in at the local period with unknown targets."""
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
    cls = np.where(meter >= 0, BAR_CLASS[np.maximum(meter, 0)], UNKNOWN)
    out_t, out_d, out_c = [times[0]], [down[0]], [cls[0]]
    for i in range(1, k):
        gaps = np.diff(times[max(0, i - 5): i + 5])
        local = float(np.median(gaps)) if len(gaps) else times[i] - times[i - 1]
        n_in = int(round((times[i] - times[i - 1]) / local)) if times[i] - times[i - 1] > GAP * local else 1
        for j in range(1, n_in):
            out_t.append(times[i - 1] + (times[i] - times[i - 1]) * j / n_in)
            out_d.append(UNKNOWN)
            out_c.append(cls[i])
        out_t.append(times[i])
        out_d.append(down[i])
        out_c.append(cls[i])
    return np.array(out_t), np.array(out_d, np.int64), np.array(out_c, np.int64)


def at_level(times: np.ndarray, down: np.ndarray, cls: np.ndarray, level: str):
    """The grid as a decoder tracking the wrong beat level would give it: ``"double"`` adds a
    beat between each two, ``"half"`` keeps every other beat (those in step with the bar lines;
    where bars hold an odd number of beats the bar lines are then unknown). The targets follow:
    the bar lines where they fall, beats in the bar counted at the new level (unknown beyond 4)."""
    beats_in_bar = np.where(cls >= 0, np.array(bars.BAR_BEATS)[np.maximum(cls, 0)], 0)
    if level == "double":
        mid = (times[:-1] + times[1:]) / 2
        t = np.ravel(np.column_stack([times[:-1], mid]))
        t = np.append(t, times[-1])
        d = np.append(np.ravel(np.column_stack([down[:-1], np.where(down[:-1] >= 0, 0, UNKNOWN)])), down[-1])
        b = np.repeat(beats_in_bar * 2, 2)[: len(t)]
    else:
        first = np.nonzero(down == 1)[0]
        start = int(first[0] % 2) if len(first) else 0
        t, d, b = times[start::2], down[start::2], beats_in_bar[start::2]
        d = np.where(b % 2 == 0, d, UNKNOWN)
        b = b // 2
    c = np.array([bars.BAR_BEATS.index(v) if v in bars.BAR_BEATS else UNKNOWN for v in b], dtype=np.int64)
    return t, d, c


#: the grid of each rendering of a piece in turn: two at the beat level, one at twice and one at half
LEVELS = ("beat", "beat", "double", "half")


def build_set(pieces, renders: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Beat features and targets ((n, 2): downbeat, class) of every rendering of every piece."""
    xs, ys = [], []
    for i, piece in enumerate(pieces):
        for r in range(renders):
            perf = render(piece, (seed + SEED_OFFSET) * 1_000_003 + i * 101 + r)
            times, down, cls = played_grid(perf)
            if len(times) >= 8 and LEVELS[r % len(LEVELS)] != "beat":
                times, down, cls = at_level(times, down, cls, LEVELS[r % len(LEVELS)])
            if len(times) < 8:
                continue
            xs.append(bars.beat_features(times, perf.onset, perf.offset, perf.pitch, perf.velocity))
            ys.append(np.stack([down, cls], axis=1))
    return xs, ys


def losses(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, tuple[float, int]]]:
    total = out.new_zeros(())
    stats = {}
    known = y[..., 0] != UNKNOWN
    if known.any():
        z, t = out[..., 0][known], y[..., 0][known].float()
        total = total + F.binary_cross_entropy_with_logits(z, t)
        stats["downbeat"] = (float(((z > 0).float() == t).sum()), int(known.sum()))
    known = y[..., 1] != UNKNOWN
    if known.any():
        z, t = out[..., 1:4][known], y[..., 1][known]
        total = total + F.cross_entropy(z, t)
        stats["beats"] = (float((z.argmax(-1) == t).sum()), int(known.sum()))
    return total, stats


def evaluate(net: ScoreNet, xs, ys) -> dict[str, float]:
    """Per-beat accuracies, and per rendering whether the bar lines read by ``best_bars`` are the
    annotated ones (the share of known downbeats matched) and its beats in the bar right."""
    net.eval()
    sums: dict[str, list[float]] = {"downbeat": [0.0, 0], "beats": [0.0, 0]}
    loss_sum, n, bars_right, meter_right = 0.0, 0, [], []
    with torch.no_grad():
        for x, y in zip(xs, ys):
            out = net(torch.from_numpy(x)[None])
            loss, stats = losses(out, torch.from_numpy(y)[None])
            loss_sum += float(loss) * len(x)
            n += len(x)
            for k, (c, m) in stats.items():
                sums[k][0] += c
                sums[k][1] += m
            o = out[0].numpy()
            m, phase = bars.best_bars(o[:, 0], log_softmax(o[:, 1:4]))
            known = y[:, 0] != UNKNOWN
            guess = (np.arange(len(x)) - phase) % m == 0
            if known.any() and (y[known, 0] == 1).any():
                bars_right.append(float((guess[known] == (y[known, 0] == 1)).mean()))
            cls = y[y[:, 1] != UNKNOWN, 1]
            if len(cls):
                meter_right.append(float(bars.BAR_BEATS[np.bincount(cls).argmax()] == m))
    net.train()
    return {"loss": loss_sum / max(n, 1), **{k: c / m if m else float("nan") for k, (c, m) in sums.items()},
            "bars": float(np.mean(bars_right)), "meter": float(np.mean(meter_right))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train_dir", type=Path, help="the training corpus (../shared/train)")
    ap.add_argument("--out", type=Path, required=True, help="run folder: curves, weights")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/kimiwonosete/train")
    ap.add_argument("--parts", default="lieder,mutopia,cpm", help="corpus parts (cpm is CC BY-SA: see MODEL_CARD.md)")
    # 10 epochs (beat-level grids only): dev loss least after 5 (0.624), 0.740 after 10.
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--renders", type=int, default=4, help="performances rendered per piece")
    ap.add_argument("--channels", type=int, default=48)
    ap.add_argument("--length", type=int, default=256, help="beats per training crop")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="pieces per part (a quick run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export", action="store_true", help=f"write the package's {bars.WEIGHTS}")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pieces = [p for part in args.parts.split(",") for p in load_part(args.train_dir, part, args.cache)[: args.limit]]
    xs, ys = build_set([p for p in pieces if not held_out(p.name)], args.renders, args.seed)
    vx, vy = build_set([p for p in pieces if held_out(p.name)], 2, args.seed + 1)
    n_beats = sum(len(x) for x in xs)
    print(f"bars: {len(xs)} renderings, {n_beats} beats; dev {len(vx)}; data {time.perf_counter() - t0:.0f} s",
          file=sys.stderr, flush=True)
    net = ScoreNet(args.channels, DILATIONS, bars.N_FEATURES, bars.HEADS)
    fit(net, (xs, ys), (vx, vy), args, rng, losses, evaluate, bars.WEIGHTS, "beats")
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    if args.export:
        _write_weights(PACKAGE_WEIGHTS, net)
    print(f"bars: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
