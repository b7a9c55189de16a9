"""Speed benchmark: stock Transkun vs our transkun backend vs basic-pitch, side by side.

Usage::

    python benchmarks/speed.py DATA_DIR_OR_AUDIO... [--limit-seconds 30] [--rounds 1]
                               [--backends stock,transkun,basic-pitch] [--json OUT]

Every (clip, backend) run is its own process, so peak memory is per run; runs are interleaved
(clip 1: A B C, clip 2: A B C, ...) so that a busy machine slows every backend alike. Each run
reports model load time, transcription wall time, real-time factor (wall / audio seconds) and
peak memory. Where a clip has a ``.tsv`` note truth beside it (the ``../shared/eval/maps``
layout) note onset F1 is reported too, and every backend's notes are compared with stock
Transkun's (onset F1 at 50 ms between the two). "stock" is Transkun 2.0 exactly as its own
command line runs it (16 s windows every 8 s, gradient checkpointing on); "transkun" is this
project's backend.
The Transkun model's cost is measured with torch's FLOP counter, giving the GFLOP/s achieved.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kimiwonosete.notes import Note, Performance

sys.path.insert(0, str(Path(__file__).parent))
from transcription import AUDIO_EXTS, load_truth, score  # noqa: E402

BACKENDS = ("stock", "transkun", "basic-pitch")


class StockTranskun:
    """Transkun 2.0 as its own command line runs it: 16 s windows every 8 s, checkpointing on."""

    def __init__(self) -> None:
        from kimiwonosete.transcription.transkun import SAMPLE_RATE, load_stock_model

        self.sample_rate = SAMPLE_RATE
        self.model = load_stock_model("cpu")

    def transcribe(self, audio: np.ndarray) -> Performance:
        import torch

        with torch.no_grad():
            events = self.model.transcribe(torch.from_numpy(audio.copy())[:, None])
        notes = [Note(e.start, e.end, e.pitch, 64) for e in events if e.pitch > 0]
        return Performance(notes, [], duration=len(audio) / self.sample_rate)


def _worker(backend: str, audio_path: str, limit: float | None) -> dict:
    """Runs in a child process: load, transcribe once, report timings and notes."""
    import warnings

    from kimiwonosete.audio import decode
    from kimiwonosete.transcription import get_transcriber

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    transcriber = StockTranskun() if backend == "stock" else get_transcriber(backend, "cpu")
    transcriber.transcribe(np.zeros(transcriber.sample_rate, dtype=np.float32))  # load + warm up
    load_s = time.perf_counter() - t0
    audio = decode(audio_path, transcriber.sample_rate)
    if limit:
        audio = audio[: int(limit * transcriber.sample_rate)]
    t0 = time.perf_counter()
    perf = transcriber.transcribe(audio)
    wall = time.perf_counter() - t0
    return {
        "load_s": load_s,
        "wall_s": wall,
        "audio_s": len(audio) / transcriber.sample_rate,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "notes": [[n.onset, n.offset, n.pitch] for n in perf.notes],
    }


def _run(backend: str, audio: Path, limit: float | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, str(audio)] + (["--limit-seconds", str(limit)] if limit else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: {backend} on {audio.name} failed: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@functools.cache
def window_gflop(backend: str) -> float:
    """GFLOP that ``backend`` (stock or transkun) spends on one 16 s window, as torch's FLOP
    counter counts them (matrix products, convolutions, attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
    from transkun.Util import makeFrame

    from kimiwonosete.transcription.transkun import load_model, load_stock_model

    model = load_stock_model() if backend == "stock" else load_model()
    seg = math.ceil(model.segmentSizeInSecond * model.fs)
    frames = makeFrame(torch.zeros(1, seg), model.hopSize, model.windowSize).unsqueeze(0)

    # torch's counter knows the GPU flash-attention kernels but not the CPU one this backend uses.
    def flash_flop(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    cpu_flash = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: flash_flop}
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=cpu_flash) as counter:
        model.processFramesBatch(frames)
    return counter.get_total_flops() / 1e9


def transkun_gflop(backend: str, audio_s: float, hop_s: float) -> float:
    """GFLOP that ``backend`` spends on ``audio_s`` seconds of audio, windows every ``hop_s`` s."""
    from kimiwonosete.transcription.transkun import SAMPLE_RATE, load_model, window_count

    n_windows = window_count(round(audio_s * SAMPLE_RATE), hop_s, load_model().hopSize)
    return window_gflop(backend) * n_windows


def _clips(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(q for q in p.iterdir() if q.suffix.lower() in AUDIO_EXTS) if p.is_dir() else [p]
    if not out:
        raise SystemExit("error: no audio files found")
    return out


def _as_arrays(notes: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    a = np.array(notes, dtype=float).reshape(-1, 3)
    return a[:, :2], a[:, 2].astype(int)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", type=Path)
    ap.add_argument("--limit-seconds", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, str(args.inputs[0]), args.limit_seconds)))
        return 0
    backends = [b.strip() for b in args.backends.split(",")]
    rows = []
    print(f"{'clip':<36} {'backend':<12} {'RTF':>6} {'wall_s':>7} {'load_s':>6} {'peakMB':>7} {'F1truth':>7} {'F1stock':>7}")
    for _ in range(args.rounds):
        for clip in _clips(args.inputs):
            truth_path = clip.with_suffix(".tsv")
            truth = load_truth(truth_path, args.limit_seconds) if truth_path.exists() else None
            results = {b: _run(b, clip, args.limit_seconds) for b in backends}
            for b, r in results.items():
                est = _as_arrays(r["notes"])
                row = {"clip": clip.name, "backend": b, "rtf": r["wall_s"] / r["audio_s"],
                       **{k: r[k] for k in ("wall_s", "load_s", "audio_s", "peak_mb")},
                       "f1_truth": score(truth, est)["onset_f1"] if truth is not None else None,
                       "f1_stock": score(_as_arrays(results["stock"]["notes"]), est)["onset_f1"] if "stock" in results else None}
                rows.append(row)
                fmt = lambda v: f"{v:7.3f}" if v is not None else f"{'-':>7}"  # noqa: E731
                print(f"{clip.name[:36]:<36} {b:<12} {row['rtf']:6.3f} {row['wall_s']:7.1f} {row['load_s']:6.1f} "
                      f"{row['peak_mb']:7.0f} {fmt(row['f1_truth'])} {fmt(row['f1_stock'])}", flush=True)
    summary = {}
    for b in backends:
        mine = [r for r in rows if r["backend"] == b]
        summary[b] = {"rtf": sum(r["wall_s"] for r in mine) / sum(r["audio_s"] for r in mine),
                      "peak_mb": max(r["peak_mb"] for r in mine)}
        for k in ("f1_truth", "f1_stock"):
            vals = [r[k] for r in mine if r[k] is not None]
            summary[b][k] = float(np.mean(vals)) if vals else None
    if "stock" in summary and "transkun" in summary:
        summary["speedup_stock_over_transkun"] = summary["stock"]["rtf"] / summary["transkun"]["rtf"]
        from kimiwonosete.transcription.transkun import HOP_S

        for b, hop in (("stock", 8.0), ("transkun", HOP_S)):
            gflop = sum(transkun_gflop(b, r["audio_s"], hop) for r in rows if r["backend"] == b)
            summary[b]["gflop_per_s"] = gflop / sum(r["wall_s"] for r in rows if r["backend"] == b)
    print(json.dumps(summary, indent=2))
    if args.json:
        from kimiwonosete.files import write_bytes_atomic

        write_bytes_atomic(args.json, json.dumps({"rows": rows, "summary": summary, "cpu_count": os.cpu_count()},
                                                 indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
