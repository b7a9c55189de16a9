"""Train and export the staff model (``kimiwonosete.score.learned.staves``) in one command.

    python -m training.train_staves ../shared/train --out training-runs/staves [--seed S] [--export]

The same renderings as the note model's (``training.train.build_set``, the same seeds), read
through the staff model's inputs, train the narrower stack on the staff targets alone; the
held-out pieces (``training.train.held_out``) report the loss and staff accuracy after every
epoch (``curves.tsv``, by ``training.train.fit``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from kimiwonosete.score.learned import staves
from training.model import ScoreNet
from training.prepare import load_part
from training.train import _write_weights, build_set, evaluate, fit, held_out, losses

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "src/kimiwonosete/score/learned" / staves.WEIGHTS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train_dir", type=Path, help="the training corpus (../shared/train)")
    ap.add_argument("--out", type=Path, required=True, help="run folder: curves, weights")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/kimiwonosete/train")
    ap.add_argument("--parts", default="lieder,mutopia,cpm", help="corpus parts (cpm is CC BY-SA: see MODEL_CARD.md)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--renders", type=int, default=4, help="performances rendered per piece")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--length", type=int, default=512, help="notes per training crop (the receptive field: 509)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    # At most 400 pieces of a part: the Lieder's first 400 (of 1,425) beside all of Mutopia (303)
    # and piano-midi.de (146), so that songs' accompaniments do not outweigh solo piano music.
    # Every 3rd ASAP performance, staff (within a hand's reach): all the Lieder 0.922 (0.926; 8
    # epochs), none 0.929 (0.932), 400 0.931 (0.933).
    ap.add_argument("--limit", type=int, default=400, help="pieces per part, at most")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export", action="store_true", help=f"write the package's {staves.WEIGHTS}")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pieces = [p for part in args.parts.split(",") for p in load_part(args.train_dir, part, args.cache)[: args.limit]]
    xs, ys = build_set([p for p in pieces if not held_out(p.name)], args.renders, args.seed, staves.staff_features)
    vx, vy = build_set([p for p in pieces if held_out(p.name)], 1, args.seed + 1, staves.staff_features)
    print(f"staves: {len(xs)} renderings, {sum(len(x) for x in xs)} notes; dev {len(vx)}; "
          f"data {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    net = ScoreNet(args.channels, staves.DILATIONS, staves.N_FEATURES, staves.HEADS)
    print(f"staves: {sum(p.numel() for p in net.parameters())} parameters", file=sys.stderr)
    loss_fn = partial(losses, heads=staves.HEADS)
    fit(net, (xs, ys), (vx, vy), args, rng, loss_fn, partial(evaluate, loss_fn=loss_fn, heads=staves.HEADS),
        staves.WEIGHTS, "notes")
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    if args.export:
        _write_weights(PACKAGE_WEIGHTS, net)
    print(f"staves: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
