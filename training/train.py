"""Prepare, train and export the score model in one command.

    python -m training.train ../shared/train --out training-runs/main [--parts lieder,mutopia,cpm]
                             [--epochs N] [--seed S] [--export]

Reads the corpus (cached under ``--cache``), renders each training piece ``--renders`` times
(seeded), trains :class:`training.model.ScoreNet` on random ``--length``-note crops, reports the
loss and per-head accuracy on held-out pieces after every epoch (``curves.tsv``), and with
``--export`` writes the weights the package ships (``score_tcn.npz``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from kimiwonosete.score.learned.features import note_features
from kimiwonosete.score.learned.net import HEADS, WEIGHTS
from kimiwonosete.score.learned.vocab import UNKNOWN
from training.model import ScoreNet
from training.prepare import load_part
from training.render import TARGETS, render

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src/kimiwonosete/score/learned"  # where --export writes
#: loss weight per head: the ones the decoder leans on most count fully
LOSS_WEIGHTS = {"beat": 1.0, "downbeat": 1.0, "period": 0.5, "meter": 0.5, "staff": 1.0, "key": 0.3, "spell": 0.5,
                "phase": 0.5}
VAL_SHARE = 0.05


def held_out(name: str) -> bool:
    """A fixed ~5 % of pieces, by name, never trained on (the dev curves)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 1000 < VAL_SHARE * 1000


def build_set(pieces, renders: int, seed: int, features=note_features) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs (``features`` of the performed notes) and targets ((n, len(TARGETS)) int64) of
    every rendering of every piece."""
    xs, ys = [], []
    for i, piece in enumerate(pieces):
        for r in range(renders):
            perf = render(piece, seed * 1_000_003 + i * 101 + r)
            xs.append(features(perf.onset, perf.offset, perf.pitch, perf.velocity))
            ys.append(np.stack([perf.targets[k] for k in TARGETS], axis=1))
    return xs, ys


def batches(xs, ys, length: int, batch: int, rng: np.random.Generator):
    """Random crops, each sequence (notes, or the bar model's beats) drawn in proportion to its
    length, about one pass over all of them."""
    sizes = np.array([len(x) for x in xs], dtype=float)
    total = int(sizes.sum())
    for _ in range(max(1, total // (length * batch))):
        picks = rng.choice(len(xs), batch, p=sizes / sizes.sum())
        xb = np.zeros((batch, length, xs[0].shape[1]), dtype=np.float32)
        yb = np.full((batch, length, ys[0].shape[1]), UNKNOWN, dtype=np.int64)
        for j, k in enumerate(picks):
            n = len(xs[k])
            start = int(rng.integers(0, max(1, n - length + 1)))
            seg = slice(start, start + length)
            xb[j, : min(length, n - start)] = xs[k][seg]
            yb[j, : min(length, n - start)] = ys[k][seg]
        yield torch.from_numpy(xb), torch.from_numpy(yb)


def losses(out: torch.Tensor, y: torch.Tensor,
           heads: dict[str, int] = HEADS) -> tuple[torch.Tensor, dict[str, tuple[float, int]]]:
    """The weighted loss of ``heads`` (the note model's, or the staff model's), and each head's
    (correct, counted) on known targets."""
    total = out.new_zeros(())
    stats = {}
    start = 0
    for name, size in heads.items():
        logits = out[..., start : start + size]
        start += size
        target = y[..., TARGETS.index(name)]
        known = target != UNKNOWN
        if not known.any():
            stats[name] = (0.0, 0)
            continue
        if size == 1:
            z = logits[..., 0][known]
            t = target[known].float()
            loss = F.binary_cross_entropy_with_logits(z, t)
            correct = float(((z > 0).float() == t).sum())
        else:
            z = logits[known]
            t = target[known]
            loss = F.cross_entropy(z, t)
            correct = float((z.argmax(-1) == t).sum())
        total = total + LOSS_WEIGHTS[name] * loss
        stats[name] = (correct, int(known.sum()))
    return total, stats


def evaluate(net: ScoreNet, xs, ys, loss_fn=losses, heads: dict[str, int] = HEADS, each=None) -> dict[str, float]:
    """The mean loss per row and each head's accuracy over sequences ``xs``, ``ys``; ``each``,
    if given, is called with every sequence's outputs (NumPy) and targets (the bar model's
    per-rendering readings)."""
    net.eval()
    sums: dict[str, list[float]] = {k: [0.0, 0] for k in heads}
    loss_sum, n = 0.0, 0
    with torch.no_grad():
        for x, y in zip(xs, ys):
            out = net(torch.from_numpy(x)[None])
            loss, stats = loss_fn(out, torch.from_numpy(y)[None])
            loss_sum += float(loss) * len(x)
            n += len(x)
            for k, (c, m) in stats.items():
                sums[k][0] += c
                sums[k][1] += m
            if each is not None:
                each(out[0].numpy(), y)
    net.train()
    return {"loss": loss_sum / max(n, 1), **{k: c / m if m else float("nan") for k, (c, m) in sums.items()}}


def corpus_command_line(doc: str, weights: str, *, renders: int = 4, limit: int | None = None,
                        limit_help: str = "pieces per part (a quick run)") -> argparse.ArgumentParser:
    """The options of every command that fits weights to renderings of the corpus: ``doc`` is
    the command's docstring, ``weights`` the file ``--export`` writes into the package."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("train_dir", type=Path, help="the training corpus (../shared/train)")
    ap.add_argument("--out", type=Path, required=True, help="run folder: curves, checkpoints, weights")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/kimiwonosete/train")
    ap.add_argument("--parts", default="lieder,mutopia,cpm", help="corpus parts (cpm is CC BY-SA: see MODEL_CARD.md)")
    ap.add_argument("--renders", type=int, default=renders, help="performances rendered per piece")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=limit, help=limit_help)
    ap.add_argument("--export", action="store_true", help=f"write the package's {weights}")
    ap.set_defaults(weights=weights)  # the file's name, for train_command
    return ap


def command_line(doc: str, weights: str, *, epochs: int, channels: int, length: int, batch: int, renders: int = 4,
                 limit: int | None = None, length_help: str = "notes per training crop",
                 limit_help: str = "pieces per part (a quick run)") -> argparse.ArgumentParser:
    """The options every network's training command (note, bar and staff model) takes: those
    of :func:`corpus_command_line` and the network's; the keywords are the command's defaults
    (each command says why at its call)."""
    ap = corpus_command_line(doc, weights, renders=renders, limit=limit, limit_help=limit_help)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--channels", type=int, default=channels)
    ap.add_argument("--length", type=int, default=length, help=length_help)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (the shipped weights: 1; another count changes the last digits)")
    return ap


def train_command(args: argparse.Namespace, name: str, build, dev_renders: int, make_net, loss_fn, evaluate_fn,
                  unit: str) -> int:
    """One training command from its parsed ``args``: seed, read the corpus parts, build the
    training and held-out sets (``build(pieces, renders, seed)`` gives inputs and targets; the
    held-out pieces rendered ``dev_renders`` times), train ``make_net()`` (:func:`fit`), write
    ``config.json`` and, with ``--export``, the package's weights (``args.weights``, set by
    :func:`corpus_command_line`). ``name`` prefixes the progress lines; ``unit`` names what a
    sequence's rows are."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pieces = [p for part in args.parts.split(",") for p in load_part(args.train_dir, part, args.cache)[: args.limit]]
    train = [p for p in pieces if not held_out(p.name)]
    xs, ys = build(train, args.renders, args.seed)
    vx, vy = build([p for p in pieces if held_out(p.name)], dev_renders, args.seed + 1)
    print(f"{name}: {len(train)} pieces, {len(xs)} sequences, {sum(len(x) for x in xs)} {unit}; dev {len(vx)} "
          f"sequences; data {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    net = make_net()
    print(f"{name}: {sum(p.numel() for p in net.parameters())} parameters", file=sys.stderr)
    fit(net, (xs, ys), (vx, vy), args, rng, loss_fn, evaluate_fn, args.weights, unit)
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    if args.export:
        _write_weights(PACKAGE_DIR / args.weights, net)
    print(f"{name}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    # A crop as long as the network's receptive field (1,021 notes), so that in training a note
    # sees music around it, not zero padding, as it does in a whole piece.
    ap = command_line(__doc__, WEIGHTS, epochs=8, channels=96, length=1024, batch=8)
    args = ap.parse_args(argv)
    return train_command(args, "train", build_set, 1, lambda: ScoreNet(args.channels), losses, evaluate, "notes")


def fit(net: ScoreNet, train_set, dev_set, args: argparse.Namespace, rng: np.random.Generator, loss_fn, evaluate_fn,
        weights: str, unit: str) -> None:
    """Train ``net`` on random crops of ``train_set`` ((inputs, targets) lists; AdamW, one-cycle
    learning rate), reporting ``evaluate_fn`` on ``dev_set`` after every epoch: printed, in
    ``args.out / "curves.tsv"``, with a checkpoint and the weights so far (``weights``).
    Both the note and the bar model train so; ``unit`` names what a sequence's rows are."""
    xs, ys = train_set
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * max(1, sum(len(x) for x in xs) // (args.length * args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    curves = []
    step = 0
    for epoch in range(args.epochs):
        te = time.perf_counter()
        run_loss, run_n = 0.0, 0
        for xb, yb in batches(xs, ys, args.length, args.batch, rng):
            if step >= steps:
                break
            loss, _ = loss_fn(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item()
            run_n += 1
        dev = evaluate_fn(net, *dev_set)
        row = {"epoch": epoch + 1, "train_loss": run_loss / max(run_n, 1), **{f"dev_{k}": v for k, v in dev.items()},
               "seconds": time.perf_counter() - te,
               f"{unit}_per_s": run_n * args.length * args.batch / (time.perf_counter() - te)}
        curves.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), file=sys.stderr, flush=True)
        torch.save(net.state_dict(), args.out / "checkpoint.pt")
        _write_weights(args.out / weights, net)
        with open(args.out / "curves.tsv", "w") as f:
            f.write("\t".join(curves[0]) + "\n")
            f.writelines("\t".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + "\n" for r in curves)


def _write_weights(path: Path, net: ScoreNet) -> None:
    """Half-precision weights (the network runs in float32; the difference is far below its margins)."""
    w = net.export()
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **{k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in w.items()})
    tmp.rename(path)


if __name__ == "__main__":
    sys.exit(main())
