"""Note-accuracy benchmark: transcribe real piano recordings and score them against note truth.

Usage::

    python benchmarks/transcription.py DATA_DIR [--model transkun|basic-pitch]
                                       [--limit-seconds N] [--json OUT]

``DATA_DIR`` holds, per recording, ``<name>.<ext>`` (any audio ffmpeg reads: .flac .wav .mp3
.ogg .m4a) and ``<name>.tsv``: a header line starting with ``#``, then tab-separated onset
seconds, offset seconds, MIDI pitch, velocity (the layout of ``../shared/eval/maps``).
Recordings without a ``.tsv`` are skipped with a note.

For each recording it reports ``mir_eval.transcription`` precision/recall/F1 with a 50 ms
onset tolerance (onset only) and F1 with offsets (offset ratio 0.2, at least 50 ms), the
real-time factor (wall time of ``transcribe()`` / audio seconds) and the process's peak memory
so far; then the means. The model is loaded once, before timing, and its load time is reported
separately. ``--limit-seconds N`` scores only the first N seconds of each recording (truth:
notes with onset < N, offsets clipped to N). ``--json OUT`` writes every figure to OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

AUDIO_EXTS = (".flac", ".wav", ".mp3", ".ogg", ".m4a")
ONSET_TOL = 0.05
OFFSET_RATIO = 0.2
OFFSET_MIN_TOL = 0.05
MIN_DURATION = 1e-3  # mir_eval rejects zero-length notes
METRICS = ("onset_p", "onset_r", "onset_f1", "onset_offset_f1", "rtf")


class BenchError(Exception):
    """A problem reported as one line, exit code 2."""


def find_recordings(data_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(audio, truth) pairs sorted by name, and audio files that have no ``.tsv`` truth."""
    if not data_dir.is_dir():
        raise BenchError(f"{data_dir}: no such directory")
    pairs, skipped = [], []
    for audio in sorted(p for p in data_dir.iterdir() if p.suffix.lower() in AUDIO_EXTS and p.is_file()):
        truth = audio.with_suffix(".tsv")
        if truth.is_file():
            pairs.append((audio, truth))
        else:
            skipped.append(audio)
    return pairs, skipped


def load_truth(path: Path, limit: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Note intervals ``(n, 2)`` in seconds and MIDI pitches from a truth ``.tsv``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data" for a header-only file
        try:
            rows = np.loadtxt(path, delimiter="\t", comments="#", ndmin=2, usecols=range(4)).reshape(-1, 4)
        except ValueError as exc:
            raise BenchError(f"{path.name}: not a note truth file ({exc})") from None
    intervals, pitches = rows[:, :2].copy(), rows[:, 2].round().astype(int)
    if limit is not None:
        keep = intervals[:, 0] < limit
        intervals, pitches = intervals[keep], pitches[keep]
        intervals[:, 1] = np.minimum(intervals[:, 1], limit)
    return intervals, pitches


def score(ref: tuple[np.ndarray, np.ndarray], est: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """Onset-only P/R/F1 and onset+offset F1; zero notes on either side score 0 (1 if both empty)."""
    import mir_eval

    (ref_iv, ref_p), (est_iv, est_p) = ref, est
    if len(ref_iv) == 0 or len(est_iv) == 0:
        v = 1.0 if len(ref_iv) == len(est_iv) == 0 else 0.0
        return {"onset_p": v, "onset_r": v, "onset_f1": v, "onset_offset_f1": v}

    def fix(iv: np.ndarray) -> np.ndarray:
        iv = iv.astype(float).copy()
        iv[:, 1] = np.maximum(iv[:, 1], iv[:, 0] + MIN_DURATION)
        return iv

    args = (fix(ref_iv), mir_eval.util.midi_to_hz(ref_p), fix(est_iv), mir_eval.util.midi_to_hz(est_p))
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        *args, onset_tolerance=ONSET_TOL, offset_ratio=None
    )
    _, _, f_off, _ = mir_eval.transcription.precision_recall_f1_overlap(
        *args, onset_tolerance=ONSET_TOL, offset_ratio=OFFSET_RATIO, offset_min_tolerance=OFFSET_MIN_TOL
    )
    return {"onset_p": p, "onset_r": r, "onset_f1": f, "onset_offset_f1": f_off}


def peak_mb() -> float:
    """Peak resident memory of this process in MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def run(data_dir: Path, model: str, limit: float | None) -> dict:
    """Benchmark ``model`` on every recording in ``data_dir``; all figures as one dict."""
    from kimiwonosete.audio import decode
    from kimiwonosete.errors import InputError
    from kimiwonosete.transcription import get_transcriber

    pairs, skipped = find_recordings(data_dir)
    for audio in skipped:
        print(f"note: skipping {audio.name}: no {audio.stem}.tsv", file=sys.stderr)
    if not pairs:
        raise BenchError(f"{data_dir}: no recordings with a .tsv note truth")
    transcriber = get_transcriber(model)
    sr = transcriber.sample_rate
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # basic-pitch divides by zero on silence
        transcriber.transcribe(np.zeros(sr, dtype=np.float32))
    load_s = time.perf_counter() - t0
    print(f"model {model}: loaded in {load_s:.1f} s (sample rate {sr} Hz)", file=sys.stderr)

    print(HEADER, flush=True)
    files = []
    for audio_path, truth_path in pairs:
        try:
            ref = load_truth(truth_path, limit)
            audio = decode(audio_path, sr)
        except (BenchError, InputError) as exc:
            print(f"note: skipping {audio_path.name}: {exc}", file=sys.stderr)
            continue
        if limit is not None:
            audio = audio[: int(round(limit * sr))]
        seconds = len(audio) / sr
        t0 = time.perf_counter()
        perf = transcriber.transcribe(audio)
        wall = time.perf_counter() - t0
        est = (perf.intervals(), perf.pitches())
        row = {"file": audio_path.name, "audio_s": seconds, "ref_notes": len(ref[0]), "est_notes": len(est[0])}
        row |= score(ref, est)
        row |= {"transcribe_s": wall, "rtf": wall / seconds if seconds else float("nan"), "peak_mb": peak_mb()}
        files.append(row)
        print(format_row(row), flush=True)

    if not files:
        raise BenchError(f"{data_dir}: no usable recordings")
    means = {k: float(np.mean([f[k] for f in files])) for k in METRICS}
    return {
        "model": model,
        "limit_seconds": limit,
        "data_dir": str(data_dir),
        "load_s": load_s,
        "peak_mb": peak_mb(),
        "files": files,
        "mean": means,
        "skipped": [p.name for p in skipped],
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
    }


HEADER = f"{'file':<40} {'ref':>5} {'est':>5} {'on_P':>6} {'on_R':>6} {'on_F1':>6} {'onoffF1':>7} {'RTF':>6} {'peakMB':>7}"


def format_row(r: dict) -> str:
    return (
        f"{r['file'][:40]:<40} {r.get('ref_notes', ''):>5} {r.get('est_notes', ''):>5} "
        f"{r['onset_p']:6.3f} {r['onset_r']:6.3f} {r['onset_f1']:6.3f} {r['onset_offset_f1']:7.3f} "
        f"{r['rtf']:6.3f} {r.get('peak_mb', float('nan')):7.0f}"
    )


def write_json(path: Path, data: dict) -> None:
    from kimiwonosete.files import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    from kimiwonosete.errors import KimiError
    from kimiwonosete.transcription import BACKENDS, DEFAULT_BACKEND

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path, help="folder of <name>.<audio> + <name>.tsv pairs")
    ap.add_argument("--model", choices=BACKENDS, default=DEFAULT_BACKEND)
    ap.add_argument("--limit-seconds", type=float, default=None, metavar="N", help="score only the first N s")
    ap.add_argument("--json", type=Path, default=None, metavar="OUT", help="write all figures to OUT")
    args = ap.parse_args(argv)
    if args.limit_seconds is not None and args.limit_seconds <= 0:
        ap.error("--limit-seconds must be positive")
    try:
        result = run(args.data_dir, args.model, args.limit_seconds)
    except (BenchError, KimiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_row({"file": "MEAN", **result["mean"], "peak_mb": result["peak_mb"]}))
    print(f"model load {result['load_s']:.1f} s; peak memory {result['peak_mb']:.0f} MB; "
          f"{len(result['files'])} files; cpu_count {os.cpu_count()}")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
