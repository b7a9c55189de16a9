"""Scale benchmark: long recordings, parallel workers and chunked-vs-single-pass agreement.

Usage::

    python benchmarks/scale.py DATA_DIR [--parts a,b,c] [--lengths 5,10,30] [--workers-minutes 10]
                               [--agreement-minutes 3] [--model transkun] [--json OUT]

``DATA_DIR`` is any folder of recordings laid out like ``../shared/eval/maps`` (audio files; other
files are ignored). Test inputs are built by concatenating its recordings in name order (ffmpeg),
cut to the wanted length, in a temporary folder.

- ``a``: each length in ``--lengths`` (minutes) goes through the command line to every output
  (PDF included): wall time, real-time factor, seconds per audio minute (linear growth keeps it
  flat), peak memory of the whole process tree (the sum of every process's resident memory,
  sampled every 0.2 s) and of its largest process, pages of the PDF.
- ``b``: one ``--workers-minutes`` input transcribed (notes only) by one worker using every core,
  one single-threaded worker, two workers, and Ray with two actors; speed-ups against the
  single-threaded worker, and whether every executor gave the same notes.
- ``c``: one ``--agreement-minutes`` input transcribed in chunks and in a single pass: onset F1
  (50 ms) and onset+offset F1 between the two, notes doubled at chunk borders; for scale, the
  same between two single passes whose windows are shifted by half a hop.

Every run is its own process, one after another, so figures within one run of this script
compare like with like on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kimiwonosete.audio import ffmpeg_exe

sys.path.insert(0, str(Path(__file__).parent))
from transcription import AUDIO_EXTS, score  # noqa: E402

SAMPLE_S = 0.2


def build_input(folder: Path, minutes: float, target: Path) -> Path:
    """``minutes`` of audio from ``folder``'s recordings, one after another (looping if short)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTS)
    if not files:
        raise SystemExit(f"{folder}: no recordings")
    listing = target.with_suffix(".txt")
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in files))
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-t", str(minutes * 60), "-ac", "1", "-c:a", "flac", str(target)], check=True)
    return target


def _tree_rss(root: int) -> tuple[int, int]:
    """(sum, largest) resident bytes of ``root`` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier.extend(children)
    sizes = [rss.get(p, 0) for p in tree]
    return sum(sizes), max(sizes, default=0)


def measured(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd``; its wall time, peak tree memory and largest process, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    peak_sum = peak_one = 0
    while proc.poll() is None:
        total, one = _tree_rss(proc.pid)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, one)
        time.sleep(SAMPLE_S)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return {"wall_s": wall, "peak_tree_gb": peak_sum / 1e9, "peak_process_gb": peak_one / 1e9, "stdout": out}


def cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "kimiwonosete", "transcribe", *map(str, args)]


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


def part_a(folder: Path, lengths: list[float], model: str, tmp: Path) -> list[dict]:
    rows = []
    for minutes in lengths:
        audio = build_input(folder, minutes, tmp / f"long{minutes:g}.flac")
        out = tmp / f"out{minutes:g}"
        run = measured(cli(audio, "-o", out, "--model", model, "--json", "--workdir", tmp / "work"))
        summary = json.loads(run.pop("stdout"))
        row = {"minutes": minutes, **run, "rtf": run["wall_s"] / (minutes * 60), "s_per_audio_min": run["wall_s"] / minutes,
               "stages_s": summary["timings_s"], "notes": summary["notes"], "bars": summary["bars"],
               "pdf_pages": pdf_pages(Path(summary["artifacts"]["pdf"]))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _notes(path: Path) -> np.ndarray:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(path))
    notes = sorted((n.start, n.end, n.pitch) for n in midi.instruments[0].notes)
    return np.array(notes, dtype=float).reshape(-1, 3)


def part_b(folder: Path, minutes: float, model: str, tmp: Path) -> dict:
    audio = build_input(folder, minutes, tmp / f"workers{minutes:g}.flac")
    configs = {
        "1 worker, all cores": (["--workers", "1"], {}),
        "1 worker, 1 thread": (["--workers", "1"], {"OMP_NUM_THREADS": "1"}),
        "2 workers": (["--workers", "2"], {}),
        "ray, 2 actors": (["--executor", "ray", "--workers", "2"], {}),
    }
    rows: dict[str, dict] = {}
    for name, (args, env) in configs.items():
        out = tmp / f"b-{len(rows)}"
        run = measured(cli(audio, "-o", out, "--model", model, "--formats", "performance", "--json",
                           "--workdir", tmp / "work", *args), env)
        summary = json.loads(run.pop("stdout"))
        rows[name] = {**run, "transcribe_s": summary["timings_s"]["transcribe"],
                      "notes": _notes(Path(summary["artifacts"]["performance"]))}
        print(name, {k: v for k, v in rows[name].items() if k != "notes"}, flush=True)
    base = rows["1 worker, 1 thread"]["transcribe_s"]
    reference = rows["2 workers"]["notes"]
    result = {}
    for name, row in rows.items():
        notes = row.pop("notes")
        same = notes.shape == reference.shape and bool(np.allclose(notes, reference, atol=1e-3))
        result[name] = {**row, "speedup_vs_1_thread": base / row["transcribe_s"], "same_notes_as_2_workers": same}
    return {"minutes": minutes, "runs": result}


def _doubled(notes: list, within: float = 0.05) -> int:
    """Same-pitch onsets closer than ``within``: a note doubled by a merge."""
    last: dict[int, float] = {}
    count = 0
    for n in sorted(notes, key=lambda n: n.onset):
        if n.onset - last.get(n.pitch, -1e9) < within:
            count += 1
        last[n.pitch] = n.onset
    return count


def part_c(folder: Path, minutes: float, model: str, tmp: Path) -> dict:
    from kimiwonosete.pipeline import transcribe

    audio = build_input(folder, minutes, tmp / f"agree{minutes:g}.flac")
    chunked = transcribe(audio, None, model=model, workdir=tmp / "work")
    single = transcribe(audio, None, model=model, chunk_s=1e6, workdir=tmp / "work")
    shift_s = 7.0  # half of Transkun's 14 s hop: every window boundary moves to the middle of a window
    shifted_audio = tmp / "shifted.flac"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-t", str(shift_s), "-i",
                    "anullsrc=r=44100:cl=mono", "-i", str(audio), "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1",
                    "-c:a", "flac", str(shifted_audio)], check=True)
    shifted = transcribe(shifted_audio, None, model=model, chunk_s=1e6, workdir=tmp / "work")
    s, c = single.performance, chunked.performance

    def arrays(performance, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        return performance.intervals() - shift, performance.pitches()

    agree, shift_agree = score(arrays(s), arrays(c)), score(arrays(s), arrays(shifted.performance, shift_s))
    return {
        "minutes": minutes, "chunks": chunked.chunks["total"], "single_notes": len(s.notes), "chunked_notes": len(c.notes),
        "onset_f1": agree["onset_f1"], "onset_offset_f1": agree["onset_offset_f1"],
        "doubled_in_chunked": _doubled(c.notes), "doubled_in_single": _doubled(s.notes),
        "windows_shifted_onset_f1": shift_agree["onset_f1"], "windows_shifted_onset_offset_f1": shift_agree["onset_offset_f1"],
        "transcribe_s": {"chunked": chunked.timings["transcribe"], "single": single.timings["transcribe"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--parts", default="c,b,a")
    ap.add_argument("--lengths", default="5,10,30", help="part a: minutes")
    ap.add_argument("--workers-minutes", type=float, default=10.0)
    ap.add_argument("--agreement-minutes", type=float, default=3.0)
    ap.add_argument("--model", default="transkun")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report: dict = {"model": args.model, "cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="kimi-scale-") as tmp_name:
        tmp = Path(tmp_name)
        for part in args.parts.split(","):
            if part == "c":
                report["c_agreement"] = part_c(args.data, args.agreement_minutes, args.model, tmp)
                print(json.dumps(report["c_agreement"]), flush=True)
            elif part == "b":
                report["b_workers"] = part_b(args.data, args.workers_minutes, args.model, tmp)
            elif part == "a":
                report["a_long"] = part_a(args.data, [float(x) for x in args.lengths.split(",")], args.model, tmp)
            else:
                raise SystemExit(f"unknown part {part!r}")
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
