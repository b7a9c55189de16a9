"""Fit and export the key weights (``kimiwonosete.score.key.key_scores``) in one command.

    python -m training.train_keys ../shared/train --out training-runs/keys [--seed S] [--export]

Every training piece is rendered ``--renders`` times (``training.train.build_set``: the same
renderer, transpositions included) and read through ``key.key_inputs``; a conditional logit
over the 24 keys (weights per mode, so major and minor profiles may count differently) learns
which key signature the piece starts in, both keys of the signature counting as right. The
held-out pieces (``training.train.held_out``) report the key signature right against the
profiles alone.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from kimiwonosete.score import key
from kimiwonosete.score.learned.vocab import UNKNOWN
from training.prepare import load_part
from training.render import TARGETS
from training.train import PACKAGE_DIR, build_set, corpus_command_line, held_out

KEY_TARGET = TARGETS.index("key")
KEY_OFFSET = 7  # the renderer's key target is fifths + 7
#: Adam steps on the whole set at once and the L2 penalty on the bass weights: on a 10 % split
#: of held-out pieces (stop 33's exploration) 1e-3 read 0.823 of them right, 3e-3 0.820; the
#: number of steps was not varied.
STEPS, LR, L2 = 300, 0.05, 1e-3


def key_set(pieces, renders: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, 24, 13) and the key signature at the first note (n,) of each rendering."""
    xs, ys = build_set(pieces, renders, seed, features=lambda on, off, p, v: key.key_inputs(on, off, p))
    inputs, truth = [], []
    for x, y in zip(xs, ys):
        known = y[:, KEY_TARGET][y[:, KEY_TARGET] != UNKNOWN]
        if len(known):
            inputs.append(x)
            truth.append(int(known[0]) - KEY_OFFSET)
    return np.stack(inputs), np.array(truth)


def fit(inputs: np.ndarray, truth: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Weights ``w`` (2, 13) and ``b`` (2,) that maximise the likelihood of the true signature
    (the summed probability of its major and minor key). Starts from the profiles alone."""
    torch.manual_seed(seed)
    x = torch.tensor(inputs, dtype=torch.float32)
    right = torch.tensor(key.FIFTHS[None, :] == truth[:, None])
    minor = torch.tensor(key.MINOR)
    w = torch.zeros(2, inputs.shape[2])
    w[:, 0] = 10.0
    w.requires_grad_(True)
    b = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=LR)
    for _ in range(STEPS):
        s = (x * w[minor]).sum(-1) + b[minor]
        loss = (torch.logsumexp(s, 1) - torch.logsumexp(s.masked_fill(~right, -1e9), 1)).mean()
        loss = loss + L2 * (w[:, 1:] ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"w": w.detach().numpy(), "b": b.detach().numpy()}


def accuracy(inputs: np.ndarray, truth: np.ndarray, weights: dict[str, np.ndarray] | None) -> float:
    """Share of renderings whose signature is read right (``weights`` None: the profiles alone)."""
    if weights is None:
        read = key.FIFTHS[inputs[:, :, 0].argmax(axis=1)]
    else:
        read = np.array([key.best_signature(key.key_scores(x, weights)) for x in inputs])
    return float(np.mean(read == truth))


def main(argv: list[str] | None = None) -> int:
    ap = corpus_command_line(__doc__, key.KEY_WEIGHTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    pieces = [p for part in args.parts.split(",") for p in load_part(args.train_dir, part, args.cache)[: args.limit]]
    x, y = key_set([p for p in pieces if not held_out(p.name)], args.renders, args.seed)
    vx, vy = key_set([p for p in pieces if held_out(p.name)], args.renders, args.seed + 1)
    weights = fit(x, y, args.seed)
    figures = {"renderings": len(y), "dev renderings": len(vy), "dev, profiles": accuracy(vx, vy, None),
               "dev, learned": accuracy(vx, vy, weights), "train, profiles": accuracy(x, y, None),
               "train, learned": accuracy(x, y, weights), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(figures), file=sys.stderr)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))
    np.savez(args.out / args.weights, **weights)
    if args.export:
        np.savez(PACKAGE_DIR / args.weights, **weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
