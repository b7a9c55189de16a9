"""Content against timing: each performance of an ASAP-style folder replaced by its written score
played deadpan at the performance's mean tempo, laid out so ``notation.py`` can score it.

Usage::

    python benchmarks/deadpan.py DATA_DIR OUT_DIR
    python benchmarks/notation.py OUT_DIR --score-models learned --json deadpan.json

For every ``<Performer>.mid`` with ``<Performer>_annotations.txt`` whose folder holds
``midi_score.mid`` and ``midi_score_annotations.txt`` with as many beats, the score MIDI's notes
(pedal dropped) and the score's annotations are mapped by one linear function of time onto the
performance's first and last annotated beat: the same notes, beats, bar lines and metre, with
no rubato, no asynchrony and the score's velocities. The written score files are linked beside
it. Performances whose beat count differs from the score's (repeats played or skipped) are left
out and listed. What the score stage loses between this folder and ``DATA_DIR`` is the cost of
human timing; what it still misses here is in the music's content.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pretty_midi

from notation import find_items, read_annotations

SCORE_MIDI, SCORE_ANNOTATIONS, SCORE_XML = "midi_score.mid", "midi_score_annotations.txt", "xml_score.musicxml"


def deadpan(perf_ann: Path, out_dir: Path) -> bool:
    """Write the deadpan copy of one performance into ``out_dir``; False if it cannot be made."""
    score_mid, score_ann = perf_ann.with_name(SCORE_MIDI), perf_ann.with_name(SCORE_ANNOTATIONS)
    if not (score_mid.exists() and score_ann.exists()):
        return False
    played, written = read_annotations(perf_ann).beats, read_annotations(score_ann).beats
    if len(played) != len(written) or len(played) < 2:
        return False
    scale = (played[-1] - played[0]) / (written[-1] - written[0])
    shift = played[0] - scale * written[0]
    midi = pretty_midi.PrettyMIDI(str(score_mid))
    for inst in midi.instruments:
        for note in inst.notes:
            note.start, note.end = shift + scale * note.start, shift + scale * note.end
        inst.control_changes = []
    for event in midi.time_signature_changes + midi.key_signature_changes:
        event.time = max(0.0, shift + scale * event.time)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = perf_ann.name.removesuffix("_annotations.txt")
    midi.write(str(out_dir / f"{stem}.mid"))
    rows = []
    for line in score_ann.read_text().splitlines():
        if line.strip():
            fields = line.split("\t")
            t = shift + scale * float(fields[0])
            rows.append(f"{t:.6f}\t{t:.6f}\t{fields[-1]}")
    (out_dir / f"{stem}_annotations.txt").write_text("\n".join(rows) + "\n")
    for name in (SCORE_XML, SCORE_MIDI, SCORE_ANNOTATIONS):
        if perf_ann.with_name(name).exists() and not (out_dir / name).exists():
            os.symlink(perf_ann.with_name(name).resolve(), out_dir / name)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args(argv)
    items = [ann for perf, ann in find_items(args.data_dir) if perf.suffix == ".mid"]
    if not items:
        print(f"error: no ASAP-style performances under {args.data_dir}", file=sys.stderr)
        return 2
    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        print(f"error: {args.out_dir} is not empty", file=sys.stderr)
        return 2
    made = 0
    for ann in items:
        if deadpan(ann, args.out_dir / ann.parent.relative_to(args.data_dir)):
            made += 1
        else:
            print(f"left out: {ann.relative_to(args.data_dir)}")
    print(f"{made} of {len(items)} performances written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
