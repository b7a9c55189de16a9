"""The renderer's timing and loudness against real performances, side by side.

    python -m training.check_render ../shared/train [--asap ../shared/eval/asap]

For each source, per piece: the beat-to-beat tempo change (|log2| of the ratio of successive beat
intervals), the spread of the tempo over the piece (std of log2 beat interval around its median),
and the beat period. Sources: piano-midi.de's hand-made tempo maps (cpm annotations), our renderings
of the Lieder and Mutopia scores, and, with ``--asap``, the beat annotations of human performances
(statistics only: the renderer is never fitted to single files).

Then the metric accents: how much louder than the notes around it (``ACCENT_S`` either side) a
note on a downbeat, on another beat and off the beat is played, on average over the pieces, and
the spread of the velocities: piano-midi.de's velocities as written, our renderings, ASAP's
performances.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from training.prepare import load_part
from training.render import render

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
ACCENT_S = 2.0  # the neighbourhood a note's loudness is measured against (as the model's features)
ON_BEAT_S = 0.05  # a performed note this close to an annotated beat is on it


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


def accents(onset: np.ndarray, velocity: np.ndarray, down: np.ndarray, beat: np.ndarray) -> np.ndarray:
    """(downbeat, other beat, off the beat) mean velocity above the local mean, and the velocity
    std, for one piece's notes sorted by onset."""
    velocity = velocity.astype(float)
    lo = np.searchsorted(onset, onset - ACCENT_S)
    hi = np.searchsorted(onset, onset + ACCENT_S, side="right")
    cum = np.concatenate([[0.0], np.cumsum(velocity)])
    above = velocity - (cum[hi] - cum[lo]) / (hi - lo)
    groups = (down, beat & ~down, ~beat)
    return np.array([above[g].mean() if g.any() else np.nan for g in groups] + [velocity.std()])


def asap_accents(folder: Path) -> list[np.ndarray]:
    from kimiwonosete.sources.midi import read_performance

    out = []
    for ann in sorted(folder.rglob("*_annotations.txt")):
        midi = ann.with_name(ann.name.removesuffix("_annotations.txt") + ".mid")
        if ann.name.startswith("midi_score") or not midi.exists():
            continue
        rows = [line.split("\t") for line in ann.read_text().splitlines() if line.strip()]
        beats = np.array([float(r[0]) for r in rows])
        downs = np.array([float(r[0]) for r in rows if r[-1].strip().startswith("db")])
        notes = sorted(read_performance(midi).notes, key=lambda n: n.onset)
        onset = np.array([n.onset for n in notes])
        inside = (onset > beats[0] - ON_BEAT_S) & (onset < beats[-1] + ON_BEAT_S)
        near = lambda ts: np.abs(onset[:, None] - ts[None, :]).min(axis=1) < ON_BEAT_S  # noqa: E731
        velocity = np.array([n.velocity for n in notes])
        out.append(accents(onset[inside], velocity[inside], near(downs)[inside] if len(downs) else
                           np.zeros(inside.sum(), bool), near(beats)[inside]))
    return out


def accent_summary(name: str, rows: list[np.ndarray]) -> None:
    m = np.nanmean(np.array(rows), axis=0).round(2)
    print(f"{name:<22} n={len(rows):<5} velocity above local mean: downbeat {m[0]}, other beat {m[1]}, "
          f"off the beat {m[2]}; velocity std {m[3]}")


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
    cpm = load_part(args.train_dir, "cpm", args.cache)[: args.pieces]
    accent_summary("cpm (as written)", [accents(p.onset, p.velocity, p.downbeat, p.beat) for p in cpm])
    if args.asap:
        accent_summary("ASAP (human)", asap_accents(args.asap))
    for part in ("lieder", "mutopia", "cpm"):
        rows = []
        for i, piece in enumerate(load_part(args.train_dir, part, args.cache)[: args.pieces]):
            r = render(piece, i)
            known = r.targets["beat"] >= 0  # not an added (transcription-like) note
            rows.append(accents(r.onset[known], r.velocity[known], r.targets["downbeat"][known] == 1,
                                r.targets["beat"][known] == 1))
        accent_summary(f"rendered {part}", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
