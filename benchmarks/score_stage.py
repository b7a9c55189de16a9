"""What the score stage costs: ``build_score`` on N minutes of music, each score model side by side.

Usage::

    python benchmarks/score_stage.py DATA_DIR [--minutes 10] [--repeat 3]

``DATA_DIR`` holds MIDI performances (``../shared/eval/asap``): they are put back to back until
the piece is ``--minutes`` long. Reports the median wall time of ``--repeat`` runs per model, and
the learned model's parts (network, decoding) from one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from kimiwonosete.notes import Note, Performance
from kimiwonosete.score.build import SCORE_MODELS, build_score
from kimiwonosete.sources.midi import read_performance


def long_performance(data_dir: Path, seconds: float) -> Performance:
    notes, t0 = [], 0.0
    paths = [p for p in sorted(data_dir.rglob("*.mid")) if p.name != "midi_score.mid"]
    for path in paths[::7]:
        perf = read_performance(path)
        notes += [Note(n.onset + t0, n.offset + t0, n.pitch, n.velocity) for n in perf.notes if n.onset + t0 < seconds]
        t0 += perf.duration + 1.0
        if t0 >= seconds:
            break
    return Performance(notes, [], min(t0, seconds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    perf = long_performance(args.data_dir, args.minutes * 60)
    print(f"{len(perf.notes)} notes, {perf.duration / 60:.1f} min")
    for model in SCORE_MODELS:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            build_score(perf, "bench", model=model)
            times.append(time.perf_counter() - t0)
        print(f"{model:<10} median {np.median(times):.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    from kimiwonosete.score.learned.features import note_features
    from kimiwonosete.score.learned.net import forward, shipped_weights

    x = note_features(*(np.array([getattr(n, k) for n in perf.notes]) for k in ("onset", "offset", "pitch", "velocity")))
    t0 = time.perf_counter()
    forward(shipped_weights(), x)
    print(f"network alone {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
