"""The renderer's timing against real performances, side by side.

    python -m training.check_render ../shared/train [--asap ../shared/eval/asap] [--png out.png]

For each source, per piece: the beat-to-beat tempo change (|log2| of the ratio of successive beat
intervals), the spread of the tempo over the piece (std of log2 beat interval around its median),
and the beat period. Sources: piano-midi.de's hand-made tempo maps (cpm annotations), our renderings
of the Lieder and Mutopia scores, and, with ``--asap``, the beat annotations of human performances
(statistics only: the renderer is never fitted to single files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from training.prepare import load_part
from training.render import render

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def beat_stats(beats: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(beat-to-beat |log2 ratio| values, piece tempo spread, median period) of one beat sequence."""
    ibi = np.diff(beats)
    ibi = ibi[ibi > 0.05]
    if len(ibi) < 8:
        return np.zeros(0), np.nan, np.nan
    lp = np.log2(ibi)
    return np.abs(np.diff(lp)), float(np.std(lp - np.median(lp))), float(np.median(ibi))


def rendered_beats(piece, seed: int) -> np.ndarray:
    """Times of the notes that fall on beats in one rendering, one per beat (the chord's mean)."""
    r = render(piece, seed)
    on = r.targets["beat"] == 1
    times = np.sort(r.onset[on])
    groups = np.split(times, np.nonzero(np.diff(times) > 0.08)[0] + 1)
    # Only consecutive beats: drop intervals spanning a beat without a note (a gap of > 1.6x median).
    beats = np.array([g.mean() for g in groups])
    return beats


def asap_beats(folder: Path) -> list[np.ndarray]:
    out = []
    for ann in sorted(folder.rglob("*_annotations.txt")):
        if ann.name.startswith("midi_score"):
            continue
        rows = [line.split("\t") for line in ann.read_text().splitlines() if line.strip()]
        out.append(np.array([float(r[0]) for r in rows]))
    return out


def cpm_beats(root: Path) -> list[np.ndarray]:
    out = []
    for ann in sorted((root / "cpm").rglob("*.annotation.tsv")):
        out.append(np.array([float(line.split("\t")[0]) for line in ann.read_text().splitlines() if line.strip()]))
    return out


def summary(name: str, sequences: list[np.ndarray]) -> dict:
    changes, spreads, periods = [], [], []
    for beats in sequences:
        c, s, p = beat_stats(beats)
        if len(c):
            changes.append(c)
            spreads.append(s)
            periods.append(p)
    allc = np.concatenate(changes)
    row = {"source": name, "pieces": len(spreads),
           "change_q": np.quantile(allc, QUANTILES).round(3).tolist(),
           "spread_q": np.quantile(spreads, QUANTILES).round(3).tolist(),
           "period_q": np.quantile(periods, QUANTILES).round(3).tolist()}
    print(f"{name:<22} n={row['pieces']:<5} beat-to-beat |log2| {row['change_q']}  piece spread {row['spread_q']}  "
          f"period s {row['period_q']}")
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train_dir", type=Path)
    ap.add_argument("--asap", type=Path)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/kimiwonosete/train")
    ap.add_argument("--pieces", type=int, default=150)
    args = ap.parse_args(argv)
    print(f"quantiles {QUANTILES}")
    summary("cpm (hand-made maps)", cpm_beats(args.train_dir))
    if args.asap:
        summary("ASAP (human)", asap_beats(args.asap))
    for part in ("lieder", "mutopia"):
        pieces = load_part(args.train_dir, part, args.cache)[: args.pieces]
        summary(f"rendered {part}", [rendered_beats(p, i) for i, p in enumerate(pieces)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
