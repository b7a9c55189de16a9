"""The training corpus (``../shared/train``) as pieces: per-note rows in score time.

Three parts, each read by its own function into the same :class:`Piece`:

- ``lieder/``: OpenScore Lieder (CC0) MusicXML, the piano part, read with partitura: staves,
  spelling, keys and metre as engraved.
- ``mutopia/``: Mutopia (public domain / CC BY) MIDI rendered by LilyPond, one track per staff:
  staves, keys and metre (no spelling: ``tpc`` unknown).
- ``cpm/``: piano-midi.de (CC BY-SA) MIDI with hand tracks and a hand-made tempo map, and ACPAS
  beat annotations: already a performance (``timed``), so its times are seconds.

A piece's times are quarter notes (``timed`` False) or seconds (``timed`` True); either way
``beat_len`` is the length of the beat in force at each note in the same unit, and the metre
and beat flags follow the annotation convention of the evaluation data: compound metres (6/8,
9/8, 12/8, 6/4) count dotted beats, 3/8 counts eighths, 2/2 halves.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from kimiwonosete.score.learned.vocab import METERS, UNKNOWN, meter_class

ON_GRID = 1e-3  # an onset this close to a beat (in the piece's unit) is on it
EDGE_S = 0.02  # cpm: an onset this close to an annotated beat is on it (its notes sit on the grid)


@dataclass
class Piece:
    """One piece's notes, sorted by onset then pitch; targets ``UNKNOWN`` (-1) where unknown."""

    name: str
    part: str  # "lieder" | "mutopia" | "cpm"
    timed: bool  # times in seconds (a performance) rather than quarter notes
    onset: np.ndarray  # float64
    duration: np.ndarray  # float64
    pitch: np.ndarray  # int16
    velocity: np.ndarray  # int16, -1: none written (scores)
    staff: np.ndarray  # int8: 0 upper, 1 lower
    tpc: np.ndarray  # int8: spelled pitch class on the line of fifths (C 0, G 1, F -1); UNKNOWN
    key: np.ndarray  # int8: key signature fifths in force; KEY_UNKNOWN where unknown
    meter: np.ndarray  # int8: index into METERS of the bar's time signature, UNKNOWN
    beat: np.ndarray  # bool: onset on a beat
    downbeat: np.ndarray  # bool: onset on a bar's first beat
    beat_len: np.ndarray  # float64: the beat's length at the note (quarters, or seconds)
    phase: np.ndarray  # float64: position in the beat, 0 <= phase < 1
    bar: np.ndarray  # int32: bar number (for phrase-level rendering)

    def __len__(self) -> int:
        return len(self.pitch)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}


KEY_UNKNOWN = 99


def beat_unit(numerator: int, denominator: int) -> tuple[float, int]:
    """(beat length in quarters, beats per bar) as the annotations count them.

    >>> beat_unit(6, 8), beat_unit(3, 8), beat_unit(2, 2), beat_unit(4, 4)
    ((1.5, 2), (0.5, 3), (2.0, 2), (1.0, 4))
    """
    quarter = 4.0 / denominator
    if numerator % 3 == 0 and numerator > 3:
        return 3 * quarter, numerator // 3
    return quarter, numerator


#: a note's row as the readers collect it: ``Piece``'s per-note arrays and their types
ROW_FIELDS = {"onset": np.float64, "duration": np.float64, "pitch": np.int16, "velocity": np.int16, "staff": np.int8,
              "tpc": np.int8, "key": np.int8, "meter": np.int8, "beat": bool, "downbeat": bool,
              "beat_len": np.float64, "phase": np.float64, "bar": np.int32}


def _add_row(rows: dict[str, list], **note) -> None:
    """Append one note, every field of ``ROW_FIELDS`` given by name."""
    for k in ROW_FIELDS:
        rows[k].append(note[k])


def _finish(name: str, part: str, timed: bool, rows: dict[str, list]) -> Piece | None:
    if len(rows["pitch"]) < 16:
        return None
    order = np.lexsort((np.asarray(rows["pitch"]), np.asarray(rows["onset"])))
    arrays = {k: np.asarray(rows[k], dtype=dt)[order] for k, dt in ROW_FIELDS.items()}
    return Piece(name, part, timed, **arrays)


def _grid_flags(pos_in_bar: np.ndarray, beat_len: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(on a beat, on the downbeat, phase in the beat) from positions in the bar (same unit)."""
    beats = pos_in_bar / beat_len
    frac = beats - np.floor(beats + ON_GRID)
    on_beat = np.abs(frac) < ON_GRID
    return on_beat, on_beat & (np.abs(pos_in_bar) < ON_GRID), np.clip(frac, 0, 1 - 1e-9)


# ---------------------------------------------------------------------------------------- lieder

def read_lieder(path: Path, piano_part: str = "") -> Piece | None:
    """The piano part of one OpenScore Lieder score."""
    import partitura

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        score = partitura.load_musicxml(str(path))
        parts = [p for p in score.parts if getattr(p, "number_of_staves", 1) >= 2]
        named = [p for p in parts if piano_part and p.part_name == piano_part]
        if not (named or parts):
            return None
        part = (named or parts)[-1]
        na = part.note_array(include_pitch_spelling=True, include_key_signature=True, include_time_signature=True,
                             include_staff=True)
        measures = [(part.quarter_map(m.start.t), part.quarter_map(m.end.t)) for m in part.measures]
    if not len(na) or not measures:
        return None
    na = na[na["duration_quarter"] > 0]  # grace notes: the pipeline takes them out before the model
    starts = np.array([float(s) for s, _ in measures])
    ends = np.array([float(e) for _, e in measures])
    onset = na["onset_quarter"].astype(float)
    bar = np.clip(np.searchsorted(starts, onset + 1e-6, side="right") - 1, 0, len(starts) - 1)
    units = [beat_unit(int(b), int(t)) for b, t in zip(na["ts_beats"], na["ts_beat_type"])]
    beat_len = np.array([u for u, _ in units])
    bar_len = na["ts_beats"] * 4.0 / na["ts_beat_type"]
    pos = onset - starts[bar]
    # A short first bar is a pickup: its notes count back from the bar line that ends it.
    short = (bar == 0) & ((ends[0] - starts[0]) < bar_len - 1e-6)
    pos[short] = bar_len[short] - (ends[0] - onset[short])
    on_beat, on_down, phase = _grid_flags(pos, beat_len)
    steps = {s: i for i, s in enumerate("FCGDAEB")}
    tpc = np.array([steps[str(s)] - 1 + 7 * int(a) for s, a in zip(na["step"], na["alter"])])
    meters = [meter_class(int(b), int(t)) for b, t in zip(na["ts_beats"], na["ts_beat_type"])]
    rows = {
        "onset": onset, "duration": na["duration_quarter"].astype(float), "pitch": na["pitch"],
        "velocity": np.full(len(na), -1), "staff": np.clip(na["staff"] - 1, 0, 1), "tpc": tpc,
        "key": na["ks_fifths"], "meter": meters, "beat": on_beat, "downbeat": on_down, "beat_len": beat_len,
        "phase": phase, "bar": bar,
    }
    return _finish(path.stem, "lieder", False, {k: list(v) for k, v in rows.items()})


# --------------------------------------------------------------------------------------- mutopia

PARTIAL = re.compile(r"\\partial\b")


def read_mutopia_midi(path: Path) -> Piece | None:
    """A LilyPond-rendered MIDI file with exactly two staff tracks (upper first)."""
    import mido

    midi = mido.MidiFile(str(path))
    tpq = midi.ticks_per_beat
    sigs: list[tuple[int, int, int]] = []  # tick, numerator, denominator
    keys: list[tuple[int, int]] = []
    tracks = []
    for track in midi.tracks:
        tick, notes, open_ = 0, [], {}
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                sigs.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "key_signature":
                keys.append((tick, _fifths(msg.key)))
            elif msg.type == "note_on" and msg.velocity > 0:
                open_.setdefault(msg.note, []).append(tick)
            elif msg.type in ("note_off", "note_on") and open_.get(msg.note):
                start = open_[msg.note].pop(0)
                if tick > start:
                    notes.append((start, tick, msg.note))
        if notes:
            tracks.append(notes)
    if len(tracks) != 2 or not sigs:
        return None
    sigs = sorted(set(sigs))
    keys = sorted(set(keys)) or [(0, KEY_UNKNOWN)]
    # Bars: from each time signature's tick, in its bar length, up to the next signature.
    end_tick = max(e for t in tracks for _, e, _ in t)
    bar_starts, bar_sig = [], []
    for i, (tick, num, den) in enumerate(sigs):
        stop = sigs[i + 1][0] if i + 1 < len(sigs) else end_tick + 1
        length = num * 4 * tpq // den
        bar_starts.extend(range(tick, stop, max(length, 1)))
        bar_sig.extend([(num, den)] * len(range(tick, stop, max(length, 1))))
    bar_starts_a = np.array(bar_starts)
    rows: dict[str, list] = {k: [] for k in ROW_FIELDS}
    key_ticks = np.array([t for t, _ in keys])
    for staff, notes in enumerate(tracks):
        for start, end, pitch in notes:
            b = int(np.searchsorted(bar_starts_a, start, side="right") - 1)
            if b < 0:
                continue
            num, den = bar_sig[b]
            unit, _ = beat_unit(num, den)
            pos = (start - bar_starts[b]) / tpq
            on_beat, on_down, phase = _grid_flags(np.array([pos]), np.array([unit]))
            _add_row(rows, onset=start / tpq, duration=(end - start) / tpq, pitch=pitch, velocity=-1, staff=staff,
                     tpc=UNKNOWN, key=keys[int(np.searchsorted(key_ticks, start, side="right") - 1)][1]
                     if start >= key_ticks[0] else keys[0][1], meter=meter_class(num, den), beat=bool(on_beat[0]),
                     downbeat=bool(on_down[0]), beat_len=unit, phase=float(phase[0]), bar=b)
    return _finish(path.stem, "mutopia", False, rows)


_KEY_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7, "F": -1, "Bb": -2, "Eb": -3,
               "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7}


def _fifths(key: str) -> int:
    """mido's key name (``"Bb"``, ``"F#m"``) as signature fifths."""
    if key.endswith("m"):
        return _KEY_FIFTHS.get(key[:-1], KEY_UNKNOWN + 3) - 3
    return _KEY_FIFTHS.get(key, KEY_UNKNOWN)


# ------------------------------------------------------------------------------------------- cpm

def read_cpm(midi_path: Path, annotation_path: Path) -> Piece | None:
    """A piano-midi.de performance with its ACPAS beats (times in seconds)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    hands = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    right = [i for i in hands if "right" in i.name.lower()]
    left = [i for i in hands if "left" in i.name.lower()]
    if not right or not left:
        return None
    beats, downs, sig_at, key_at = [], [], [], []
    sig, key = (4, 4), KEY_UNKNOWN
    for line in annotation_path.read_text().splitlines():
        t, label = line.split("\t")[0], line.split("\t")[-1]
        kind, *rest = label.strip().split(",")
        if rest and rest[0]:
            num, den = rest[0].split("/")
            sig = (int(num), int(den))
        if len(rest) > 1 and rest[1]:
            key = int(rest[1])
        beats.append(float(t))
        downs.append(kind == "db")
        sig_at.append(sig)
        key_at.append(key)
    b = np.array(beats)
    if len(b) < 8:
        return None
    rows: dict[str, list] = {k: [] for k in ROW_FIELDS}
    bar_no = np.cumsum(downs) - 1
    ibi = np.diff(b)
    for staff, insts in enumerate((right, left)):
        for inst in insts:
            for n in inst.notes:
                i = int(np.searchsorted(b, n.start + EDGE_S, side="right") - 1)
                if i < 0 or i >= len(b) - 1 or n.end <= n.start:
                    continue  # outside the annotated span
                near = n.start - b[i] < EDGE_S
                _add_row(rows, onset=n.start, duration=n.end - n.start, pitch=n.pitch, velocity=n.velocity, staff=staff,
                         tpc=UNKNOWN, key=key_at[i], meter=meter_class(*sig_at[i]), beat=bool(near),
                         downbeat=bool(near and downs[i]), beat_len=float(ibi[i]),
                         phase=0.0 if near else float(np.clip((n.start - b[i]) / ibi[i], 0, 1 - 1e-9)), bar=int(bar_no[i]))
    return _finish(midi_path.stem, "cpm", True, rows)


# ----------------------------------------------------------------------------------------- index

def pieces(root: Path, part: str) -> list[tuple]:
    """Arguments for the reader of each piece of ``part`` under ``root`` (the training folder)."""
    folder = root / part
    with open(folder / "index.tsv", newline="") as f:
        index = list(csv.DictReader(f, delimiter="\t"))
    if part == "lieder":
        return [("lieder", folder / r["file"], r.get("piano_part", "")) for r in index]
    if part == "cpm":
        return [("cpm", folder / r["file"], folder / r["annotation"]) for r in index]
    out = []
    for r in index:
        piece_dir = folder / r["folder"]
        if any(PARTIAL.search(p.read_text(errors="ignore")) for p in piece_dir.rglob("*.ly")):
            continue  # LilyPond's MIDI starts at the pickup: its bar lines cannot be placed
        out.extend(("mutopia", m) for m in sorted((piece_dir / "midi").glob("*.mid")))
    return out


def read(args: tuple) -> Piece | None:
    """One piece from :func:`pieces`' arguments (None when it cannot be used)."""
    kind, *rest = args
    try:
        if kind == "lieder":
            return read_lieder(*rest)
        if kind == "mutopia":
            return read_mutopia_midi(*rest)
        return read_cpm(*rest)
    except Exception:  # a file a reader cannot parse is left out (counted by the caller)
        return None


__all__ = ["METERS", "Piece", "beat_unit", "pieces", "read"]
