"""Rhythm and meter benchmark: the score stage against annotated beats, downbeats and meter.

Usage::

    python benchmarks/notation.py DATA_DIR [--json OUT] [--limit N]

``DATA_DIR`` is laid out like ``../shared/eval/asap`` (``<Performer>.mid`` performances beside
``<Performer>_annotations.txt``: ``time<TAB>time<TAB>label``) or like ``../shared/eval/maps``
(``<name>.tsv`` note truth beside ``<name>.amaps_annotation.tsv``: ``time<TAB>label``). Labels
are ``b`` (beat), ``db`` (downbeat) or ``bR``, optionally followed by ``,<timesig>`` and
``,<key>``. For each performance the score stage runs on the true notes (MIDI or .tsv; no audio)
and the benchmark reports mir_eval beat F1 and downbeat F1 (70 ms window), the share of
annotated bars whose time signature equals the score's, and onset-position accuracy: the share
of notes whose written position in the bar (in beats) equals their position in the annotated
bar. The annotated position of a note is its onset interpolated between the annotated beats,
counted from the last annotated downbeat and rounded to the nearest quarter or third of a beat
(only notes inside the annotated span count); the written position is that of the score event of
the same pitch played nearest to the onset. Means are over performances.

Not yet measured here (see the rhythm and notation issues): durations and a whole-score measure
against ``xml_score.musicxml``, and MuseScore 3 as a baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METRICS = ("beat_f1", "downbeat_f1", "timesig_acc", "position_acc")
GRID_TOL = 1e-6
MATCH_S = 0.3  # a score event is the note's if played within this of its onset


@dataclass
class Annotations:
    beats: np.ndarray
    downbeats: np.ndarray
    bar_timesigs: list[str]  # the time signature in force at each downbeat ("" if never given)


def read_annotations(path: Path) -> Annotations:
    beats, downbeats, sigs = [], [], []
    current = ""
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            continue
        t, label = float(fields[0]), fields[-1].strip()
        kind, *rest = label.split(",")
        if rest and rest[0]:
            current = rest[0]
        beats.append(t)
        if kind == "db":
            downbeats.append(t)
            sigs.append(current)
    return Annotations(np.array(beats), np.array(downbeats), sigs)


def find_items(data_dir: Path) -> list[tuple[Path, Path]]:
    """(performance notes, annotations) pairs: ASAP-style MIDI or MAPS-style .tsv."""
    items = []
    for ann in sorted(data_dir.rglob("*_annotations.txt")):
        perf = ann.with_name(ann.name.removesuffix("_annotations.txt") + ".mid")
        if perf.name != "midi_score.mid" and perf.exists():
            items.append((perf, ann))
    for ann in sorted(data_dir.rglob("*.amaps_annotation.tsv")):
        tsv = ann.with_name(ann.name.removesuffix(".amaps_annotation.tsv") + ".tsv")
        if tsv.exists():
            items.append((tsv, ann))
    return items


def read_notes(path: Path):
    from kimiwonosete.notes import Note, Performance
    from kimiwonosete.sources.midi import read_performance

    if path.suffix == ".mid":
        return read_performance(path)
    rows = np.loadtxt(path, delimiter="\t", comments="#", ndmin=2).reshape(-1, 4)
    notes = [Note(float(a), float(b), int(round(p)), int(v)) for a, b, p, v in rows]
    return Performance(notes, [], duration=float(rows[:, 1].max()) if len(rows) else 0.0)


def snap(beats: np.ndarray) -> np.ndarray:
    """Positions in beats rounded to the nearer of the quarter-beat and third-beat grids."""
    q, t = np.round(beats * 4) / 4, np.round(beats * 3) / 3
    return np.where(np.abs(beats - q) <= np.abs(beats - t), q, t)


def annotated_positions(onsets: np.ndarray, truth: Annotations) -> np.ndarray:
    """Each onset's position in its annotated bar, in beats (NaN outside the annotated span)."""
    index = np.arange(len(truth.beats), dtype=float)
    b = np.interp(onsets, truth.beats, index, left=np.nan, right=np.nan)
    down = index[np.isin(truth.beats, truth.downbeats)]
    if not len(down):
        return np.full(len(onsets), np.nan)
    j = np.searchsorted(down, snap(b) + GRID_TOL, side="right") - 1
    pos = np.where(j >= 0, snap(b) - down[np.clip(j, 0, None)], np.nan)
    return pos


def written_positions(score, onsets: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Each onset's position in its written bar, in beats, via the score event of the same pitch
    played nearest to it (NaN when none is within ``MATCH_S``)."""
    ts = score.time_signature
    beat_times = np.array(score.beat_times)
    by_pitch: dict[int, list[int]] = {}
    for staff in score.staves:
        for e in staff.events:
            for p in e.pitches:
                by_pitch.setdefault(p.midi, []).append(e.start)
    out = np.full(len(onsets), np.nan)
    if len(beat_times) < 2:
        return out
    index = np.arange(len(beat_times), dtype=float)
    for pitch, starts in by_pitch.items():
        ticks = np.array(sorted(starts))
        played = np.interp(ticks / ts.beat_ticks, index, beat_times)
        for i in np.nonzero(pitches == pitch)[0]:
            k = int(np.argmin(np.abs(played - onsets[i])))
            if abs(played[k] - onsets[i]) <= MATCH_S:
                out[i] = (ticks[k] % ts.bar_ticks) / ts.beat_ticks
    return out


def evaluate(perf_path: Path, ann_path: Path) -> dict:
    import mir_eval

    from kimiwonosete.score.build import build_score

    truth = read_annotations(ann_path)
    perf = read_notes(perf_path)
    t0 = time.perf_counter()
    score = build_score(perf, perf_path.stem)
    seconds = time.perf_counter() - t0
    onsets = np.array([n.onset for n in perf.notes])
    true_pos = annotated_positions(onsets, truth)
    ours = written_positions(score, onsets, np.array([n.pitch for n in perf.notes]))
    counted = ~np.isnan(true_pos)
    est_beats = np.array(score.beat_times)
    est_down = np.array(score.downbeat_times)
    ts = str(score.time_signature)
    known = [s for s in truth.bar_timesigs if s]
    return {
        "item": str(perf_path),
        "beat_f1": mir_eval.beat.f_measure(mir_eval.beat.trim_beats(truth.beats), mir_eval.beat.trim_beats(est_beats)),
        "downbeat_f1": mir_eval.beat.f_measure(truth.downbeats, est_down),
        "timesig_acc": float(np.mean([s == ts for s in known])) if known else float("nan"),
        "position_acc": float(np.mean(np.abs(ours[counted] - true_pos[counted]) < 1e-3)) if counted.any() else float("nan"),
        "est_timesig": ts,
        "true_timesig": max(set(known), key=known.count) if known else "",
        "est_tempo": 60.0 / float(np.median(np.diff(est_beats))) if len(est_beats) > 1 else float("nan"),
        "true_tempo": 60.0 / float(np.median(np.diff(truth.beats))) if len(truth.beats) > 1 else float("nan"),
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--limit", type=int, help="only the first N performances")
    args = ap.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"error: {args.data_dir}: no such directory", file=sys.stderr)
        return 2
    items = find_items(args.data_dir)[: args.limit]
    if not items:
        print(f"error: {args.data_dir}: no annotated performances found", file=sys.stderr)
        return 2
    rows = []
    print(f"{'performance':<60} {'beatF1':>6} {'dbF1':>6} {'TSacc':>6} {'posAcc':>6} {'TS est/true':>12} {'tempo est/true':>15}")
    for perf, ann in items:
        r = evaluate(perf, ann)
        rows.append(r)
        name = str(perf.relative_to(args.data_dir))
        print(f"{name[-60:]:<60} {r['beat_f1']:6.3f} {r['downbeat_f1']:6.3f} {r['timesig_acc']:6.3f} {r['position_acc']:6.3f} "
              f"{r['est_timesig'] + '/' + r['true_timesig']:>12} {r['est_tempo']:7.1f}/{r['true_tempo']:<7.1f}", flush=True)
    means = {k: float(np.nanmean([r[k] for r in rows])) for k in METRICS}
    print("MEAN " + "  ".join(f"{k} {v:.3f}" for k, v in means.items()) + f"  ({len(rows)} performances)")
    if args.json:
        from kimiwonosete.files import write_bytes_atomic

        write_bytes_atomic(args.json, json.dumps({"rows": rows, "mean": means}, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
