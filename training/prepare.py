"""Reads the training corpus once into a cache of compact arrays (one ``.npz`` per part)."""

from __future__ import annotations

import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from training.corpus import Piece, pieces, read

PARTS = ("lieder", "mutopia", "cpm")


def _save(path: Path, items: list[Piece]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, p in enumerate(items):
        for k, v in p.arrays().items():
            arrays[f"{i}/{k}"] = v
    meta = np.array([[p.name, p.part, str(int(p.timed))] for p in items], dtype=object)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, meta=meta.astype(str), **arrays)
    tmp.rename(path)


def _load(path: Path) -> list[Piece]:
    data = np.load(path)
    out = []
    for i, (name, part, timed) in enumerate(data["meta"]):
        cols = {k: data[f"{i}/{k}"] for k in ("onset", "duration", "pitch", "velocity", "staff", "tpc", "key", "meter",
                                               "beat", "downbeat", "beat_len", "phase", "bar")}
        out.append(Piece(str(name), str(part), timed == "1", **cols))
    return out


def load_part(root: Path, part: str, cache: Path, workers: int = 2) -> list[Piece]:
    """The pieces of one part, read (in ``workers`` processes) the first time and cached."""
    path = cache / f"{part}.npz"
    if path.exists():
        return _load(path)
    cache.mkdir(parents=True, exist_ok=True)
    args = pieces(root, part)
    t0 = time.perf_counter()
    with get_context("spawn").Pool(workers) as pool:
        read_ = pool.map(read, args, chunksize=8)
    items = [p for p in read_ if p is not None]
    print(f"prepare: {part}: {len(items)} of {len(args)} pieces, {sum(map(len, items))} notes, "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    _save(path, items)
    return items


if __name__ == "__main__":
    root, cache = Path(sys.argv[1]), Path(sys.argv[2])
    for part in sys.argv[3:] or PARTS:
        load_part(root, part, cache)
