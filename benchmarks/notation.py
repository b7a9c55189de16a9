"""Rhythm and meter benchmark: the score stage against annotated beats, downbeats and meter.

Usage::

    python benchmarks/notation.py DATA_DIR [--json OUT] [--limit N] [--musescore]
                                           [--from-audio [--seconds S] [--model M] [--notes-cache DIR]]

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

Against the written score (where there is one: ASAP's ``midi_score.mid`` with
``midi_score_annotations.txt``, beat for beat with the performance's annotations; MAPS'
``.amaps.mid``, already in performance time): every score note is paired with the written note
of the same pitch played nearest to it (within ``MATCH_S``, each written note used once), and

- ``duration_acc``: share of paired notes whose written value in beats equals the score's
  (both snapped like positions);
- ``note_f1``: a whole-score note measure in the spirit of MUSTER: a written note is right when
  its pitch, its position in the bar and its value all equal its score note's; F1 of right notes
  against all written and all score notes (so missing and extra notes count too);
- ``staff_acc``: share of paired notes on the score's staff (ASAP: the score MIDI's tracks; MAPS:
  the A-MAPS hand tracks);
- ``spelling_acc``: share of paired notes spelled as engraved in ``xml_score.musicxml``;
- ``voice_f1``: voice separation in the spirit of MV2H's voice score: F1 of the links from each
  chord of a voice to the next chord of that voice, ours against the engraved voices.

Beats are each side's own: a score written in eighths where the composer wrote quarters loses
positions and values, as a pianist reading it would.

``--from-audio`` (MAPS-style folders: ``<name>.flac`` beside the ``.tsv``) transcribes the first
``--seconds`` (default 60) of each recording with ``--model`` (default transkun) instead of
reading the true notes: the whole product end to end. Annotations and score notes are cut at
the same second. ``--notes-cache DIR`` keeps the transcriptions for a rerun that changes only
the score stage.

``--musescore`` adds a baseline: MuseScore 3 (``mscore3``, headless) converts each performance
MIDI to MusicXML, and the same measures are computed for its notes (``ms_*``; MIDI performances
only). MuseScore's import places bars on the MIDI file's own tick grid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from kimiwonosete.score.model import note_name

SCORE_MODELS = ("learned", "heuristic")
PREFIX = {"heuristic": "h_"}  # measures of the second model are named with this prefix
OURS = ("beat_f1", "downbeat_f1", "timesig_acc", "key_acc", "position_acc", "duration_acc", "note_f1", "staff_acc",
        "spelling_acc", "voice_f1")
MUSESCORE = ("ms_position_acc", "ms_duration_acc", "ms_note_f1", "ms_staff_acc", "ms_spelling_acc", "ms_voice_f1")
GRID_TOL = 1e-6
MATCH_S = 0.3  # a score event is the note's if played within this of its onset


@dataclass
class Annotations:
    beats: np.ndarray
    downbeats: np.ndarray
    bar_timesigs: list[str]  # the time signature in force at each downbeat ("" if never given)
    bar_keys: list[int | None]  # the key signature (fifths) in force at each downbeat (None if never given)

    @property
    def known_timesigs(self) -> list[str]:
        """The time signature of each bar that has one given."""
        return [s for s in self.bar_timesigs if s]


def read_annotations(path: Path) -> Annotations:
    beats, downbeats, sigs, keys = [], [], [], []
    current, key = "", None
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            continue
        t, label = float(fields[0]), fields[-1].strip()
        kind, *rest = label.split(",")
        if rest and rest[0]:
            current = rest[0]
        if len(rest) > 1 and rest[1].strip():
            key = int(rest[1])
        beats.append(t)
        if kind == "db":
            downbeats.append(t)
            sigs.append(current)
            keys.append(key)
    return Annotations(np.array(beats), np.array(downbeats), sigs, keys)


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


@dataclass
class Notes:
    """Written notes: MIDI pitch, when played (s), position in the bar and value (in beats), staff
    (0 upper, 1 lower), spelling (``"F#"``, ``"Bb"``; ``""`` where unknown) and voice (an id
    unique in the score; -1 where unknown)."""

    pitch: np.ndarray
    played: np.ndarray
    position: np.ndarray
    value: np.ndarray
    staff: np.ndarray
    spelling: np.ndarray
    voice: np.ndarray

    @classmethod
    def of(cls, rows: list[tuple[int, float, float, float, int, str, int]]) -> Notes:
        cols = list(zip(*rows)) if rows else [()] * 7
        return cls(np.array(cols[0], dtype=int), np.array(cols[1], dtype=float), np.array(cols[2], dtype=float),
                   np.array(cols[3], dtype=float), np.array(cols[4], dtype=int), np.array(cols[5], dtype=object),
                   np.array(cols[6], dtype=int))

    def take(self, keep: np.ndarray) -> Notes:
        return Notes(*(getattr(self, f.name)[keep] for f in fields(self)))


def match_positions(written: Notes, onsets: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Each onset's written position: that of the written note of the same pitch played nearest
    to it; NaN when none is within ``MATCH_S``."""
    out = np.full(len(onsets), np.nan)
    for pitch in np.unique(written.pitch):
        mine = np.nonzero(written.pitch == pitch)[0]
        for i in np.nonzero(pitches == pitch)[0]:
            k = mine[int(np.argmin(np.abs(written.played[mine] - onsets[i])))]
            if abs(written.played[k] - onsets[i]) <= MATCH_S:
                out[i] = written.position[k]
    return out


def pair_notes(truth: Notes, written: Notes) -> list[tuple[int, int]]:
    """One-to-one (score note, written note) pairs: same pitch, played within ``MATCH_S``,
    nearest pairs first."""
    candidates = []
    for pitch in np.unique(truth.pitch):
        t_idx, w_idx = np.nonzero(truth.pitch == pitch)[0], np.nonzero(written.pitch == pitch)[0]
        if not len(w_idx):
            continue
        gap = np.abs(truth.played[t_idx, None] - written.played[None, w_idx])
        for a, b in zip(*np.nonzero(gap <= MATCH_S)):
            candidates.append((gap[a, b], t_idx[a], w_idx[b]))
    used_t, used_w, pairs = set(), set(), []
    for _, t, w in sorted(candidates):
        if t not in used_t and w not in used_w:
            used_t.add(t)
            used_w.add(w)
            pairs.append((int(t), int(w)))
    return pairs


SCORE_MEASURES = ("duration_acc", "note_f1", "staff_acc", "spelling_acc", "voice_f1")


def score_measures(truth: Notes | None, written: Notes | None) -> dict[str, float]:
    """``SCORE_MEASURES`` of ``written`` against the score's notes (NaN without a score)."""
    out = dict.fromkeys(SCORE_MEASURES, float("nan"))
    if truth is None or written is None or not len(truth.pitch):
        return out
    pairs = pair_notes(truth, written)
    if not pairs:
        return {**out, "note_f1": 0.0}
    t, w = np.array(pairs).T
    same_value = np.abs(snap(written.value[w]) - snap(truth.value[t])) < 1e-3
    same_position = np.abs(snap(written.position[w]) - snap(truth.position[t])) < 1e-3
    right = int(np.sum(same_value & same_position))
    spelled = truth.spelling[t] != ""
    right_names = written.spelling[w][spelled] == truth.spelling[t][spelled]
    return {
        "duration_acc": float(np.mean(same_value)),
        "note_f1": 2 * right / (len(truth.pitch) + len(written.pitch)),
        "staff_acc": float(np.mean(written.staff[w] == truth.staff[t])),
        "spelling_acc": float(np.mean(right_names)) if spelled.any() else float("nan"),
        "voice_f1": voice_f1(truth, written, pairs),
    }


def _links(notes: Notes, among: np.ndarray) -> set[tuple[int, int]]:
    """Voice links in the spirit of MV2H's voice score: every note of a chord in a voice to every
    note of the next chord in that voice (notes ``among`` only)."""
    links: set[tuple[int, int]] = set()
    for v in np.unique(notes.voice[among]):
        if v < 0:
            continue
        idx = among[notes.voice[among] == v]
        onsets = np.unique(np.round(notes.played[idx], 3))
        chords = [idx[np.round(notes.played[idx], 3) == t] for t in onsets]
        for a, b in zip(chords, chords[1:]):
            links.update((int(i), int(j)) for i in a for j in b)
    return links


def voice_f1(truth: Notes, written: Notes, pairs: list[tuple[int, int]]) -> float:
    """F1 of the written voice links against the engraved ones, over notes paired with the score."""
    t, w = (np.array(x) for x in zip(*pairs))
    known = truth.voice[t] >= 0
    if known.sum() < 2:
        return float("nan")
    t, w = t[known], w[known]
    to_truth = dict(zip(w.tolist(), t.tolist()))
    true_links = _links(truth, t)
    ours = {(to_truth[a], to_truth[b]) for a, b in _links(written, w)}
    hit = len(true_links & ours)
    return 2 * hit / (len(true_links) + len(ours)) if true_links or ours else float("nan")


def written_notes(score) -> Notes | None:
    """Our score's notes (a chord's notes share its value: one voice per staff)."""
    ts = score.time_signature
    beat_times = np.array(score.beat_times)
    if len(beat_times) < 2:
        return None
    index = np.arange(len(beat_times), dtype=float)
    rows = []
    for number, staff in enumerate(score.staves):
        for v, voice in enumerate(staff.voices):
            for e in voice:
                played = float(np.interp(e.start / ts.beat_ticks, index, beat_times))
                for p in e.pitches:
                    rows.append((p.midi, played, (e.start % ts.bar_ticks) / ts.beat_ticks, e.duration / ts.beat_ticks,
                                 number, note_name(p.step, p.alter), 2 * number + v))
    return Notes.of(rows)


def score_notes(perf_path: Path, perf_truth: Annotations) -> Notes | None:
    """The composer's notes, when played in this performance, with position and value in beats.

    ASAP: ``midi_score.mid`` placed on the performance through the beat-for-beat annotations
    (None when the two annotation files do not have the same beats). MAPS: ``.amaps.mid``.
    """
    import pretty_midi

    if perf_path.suffix == ".mid":
        midi_path = perf_path.with_name("midi_score.mid")
        ann_path = perf_path.with_name("midi_score_annotations.txt")
        if not (midi_path.exists() and ann_path.exists()):
            return None
        score_truth = read_annotations(ann_path)
        if len(score_truth.beats) != len(perf_truth.beats):
            return None
    else:
        midi_path = perf_path.with_name(perf_path.name.removesuffix(".tsv") + ".amaps.mid")
        if not midi_path.exists():
            return None
        score_truth = perf_truth
    index = np.arange(len(score_truth.beats), dtype=float)
    down = index[np.isin(score_truth.beats, score_truth.downbeats)]
    if len(index) < 2 or not len(down):
        return None
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    # One track per staff (ASAP) or hand (A-MAPS), the upper one first.
    tracks = [inst.notes for inst in midi.instruments if not inst.is_drum and inst.notes]
    staves = track_staves([np.mean([n.pitch for n in track]) for track in tracks])
    notes = [(n, staves[s]) for s, track in enumerate(tracks) for n in track]
    pitch = np.array([n.pitch for n, _ in notes])
    staff = np.array([s for _, s in notes])
    names, voices = _xml_notes(perf_path.with_name("xml_score.musicxml"), midi, [n for n, _ in notes])
    on = np.interp([n.start for n, _ in notes], score_truth.beats, index, left=np.nan, right=np.nan)
    off = np.interp([n.end for n, _ in notes], score_truth.beats, index, left=np.nan, right=np.nan)
    keep = ~np.isnan(on) & ~np.isnan(off)
    on, off, pitch, staff, names, voices = on[keep], off[keep], pitch[keep], staff[keep], names[keep], voices[keep]
    j = np.searchsorted(down, snap(on) + GRID_TOL, side="right") - 1
    keep = j >= 0
    played = np.interp(on[keep], index, perf_truth.beats)
    position = snap(on[keep]) - down[j[keep]]
    return Notes(pitch[keep], played, position, off[keep] - on[keep], staff[keep], names[keep], voices[keep])


def track_staves(mean_pitches: list[float]) -> list[int]:
    """The staff (0 upper, 1 lower) of each score track in a two-staff reading, tracks listed
    top first: the first is the upper staff, the last the lower, and a middle staff of a
    three-staff score (ASAP: Liszt's Transcendental Etude 4 and Ravel's Ondine have one above
    the right hand, Scriabin's 5th sonata one below the left) joins the one nearer in pitch.

    >>> track_staves([70.1, 54.6]), track_staves([80.6, 74.2, 63.5]), track_staves([71.6, 54.3, 39.8])
    ([0, 1], [0, 0, 1], [0, 1, 1])
    """
    if len(mean_pitches) < 2:
        return [0] * len(mean_pitches)
    top, bottom = mean_pitches[0], mean_pitches[-1]
    middle = [int(abs(p - bottom) < abs(p - top)) for p in mean_pitches[1:-1]]
    return [0, *middle, 1]


SHIFT_WINDOW = 30  # notes either side that vote on where the engraved score is (see _xml_spellings)


def _xml_notes(xml_path: Path, midi, notes) -> tuple[np.ndarray, np.ndarray]:
    """The engraved spelling and voice of each score-MIDI note (``""`` and -1 where unknown or no
    MusicXML).

    The MusicXML (as engraved, repeats not unfolded) and the score MIDI (repeats played out, an
    ornament or tie merged here and there) do not line up note for note, so each MIDI note takes
    the spelling of the engraved note of the same pitch at the same place after a local shift:
    the shift (in quarter notes) on which most of the ``SHIFT_WINDOW`` notes either side agree.
    """
    out = np.full(len(notes), "", dtype=object)
    voices = np.full(len(notes), -1, dtype=int)
    if not xml_path.exists():
        return out, voices
    import contextlib
    import io
    from collections import Counter

    import partitura

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # what it repairs
            na = partitura.load_musicxml(str(xml_path)).parts[0].note_array(include_pitch_spelling=True)
    except Exception:  # an engraved score partitura cannot read is reported as unknown
        return out, voices
    engraved: dict[int, dict[int, tuple[str, int]]] = {}  # pitch -> (onset in 48ths of a quarter -> spelling, voice)
    for p, q, st, a, v in zip(na["pitch"], na["onset_quarter"], na["step"], na["alter"], na["voice"]):
        engraved.setdefault(int(p), {})[round(float(q) * 48)] = (note_name(str(st), int(a)), int(v))
    quarters = [round(midi.time_to_tick(n.start) / midi.resolution * 48) for n in notes]
    order = sorted(range(len(notes)), key=quarters.__getitem__)
    shifts = [{quarters[i] - q for q in engraved.get(notes[i].pitch, {})} for i in order]
    votes: Counter[int] = Counter()
    for k in range(min(SHIFT_WINDOW, len(order))):
        votes.update(shifts[k])
    for k, i in enumerate(order):
        if k + SHIFT_WINDOW < len(order):
            votes.update(shifts[k + SHIFT_WINDOW])
        if k - SHIFT_WINDOW - 1 >= 0:
            votes.subtract(shifts[k - SHIFT_WINDOW - 1])
        if shifts[k]:
            best = max(shifts[k], key=lambda d: (votes[d], -abs(d)))
            if votes[best] > 1:
                out[i], voices[i] = engraved[notes[i].pitch][quarters[i] - best]
    return out, voices


def musescore_notes(perf_path: Path) -> Notes | None:
    """The notes MuseScore 3 writes for the performance MIDI, their position and value in beats
    of the bar's time signature (tied notes joined), and when each was played."""
    import os
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    import pretty_midi

    with tempfile.TemporaryDirectory(prefix="notation-ms-") as tmp:
        xml_path = Path(tmp) / "score.musicxml"
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        proc = subprocess.run(["mscore3", "-o", str(xml_path), str(perf_path)], capture_output=True, env=env, timeout=300)
        if proc.returncode != 0 or not xml_path.exists():
            return None
        root = ET.parse(xml_path).getroot()
    midi = pretty_midi.PrettyMIDI(str(perf_path))
    rows: list[list[float]] = []  # pitch, played, position, value
    for part in root.iter("part"):
        open_ties: dict[tuple[str, int], int] = {}  # (staff, pitch) -> row being lengthened
        divisions, beats, beat_type, bar_start = 1, 4, 4, 0.0  # bar_start in quarter notes
        for measure in part.iter("measure"):
            pos = last = 0
            for el in measure:
                if el.tag == "attributes":
                    divisions = int(el.findtext("divisions", divisions))
                    beats = int(el.findtext("time/beats", beats))
                    beat_type = int(el.findtext("time/beat-type", beat_type))
                elif el.tag == "backup":
                    pos -= int(el.findtext("duration", 0))
                elif el.tag == "forward":
                    pos += int(el.findtext("duration", 0))
                elif el.tag == "note":
                    duration = int(el.findtext("duration", 0))
                    start = pos - (last if el.find("chord") is not None else 0)
                    if el.find("chord") is None:
                        pos += duration
                        last = duration
                    step = el.find("pitch")
                    if step is None or el.find("grace") is not None:
                        continue
                    midi_pitch = _midi_number(step)
                    name = note_name(step.findtext("step"), int(float(step.findtext("alter", 0))))
                    # Compound meters count dotted quarters, as the annotations do.
                    beat_quarters = 4 / beat_type * (3 if beat_type == 8 and beats % 3 == 0 and beats > 3 else 1)
                    value = duration / divisions / beat_quarters
                    key = (el.findtext("staff", "1"), midi_pitch)
                    if el.find("tie[@type='stop']") is not None and key in open_ties:
                        row = open_ties.pop(key)
                        rows[row][3] += value
                    else:
                        quarters = start / divisions
                        tick = (bar_start + quarters) * midi.resolution
                        rows.append([midi_pitch, midi.tick_to_time(int(round(tick))), quarters / beat_quarters, value,
                                     min(int(el.findtext("staff", "1")) - 1, 1), name, int(el.findtext("voice", "1"))])
                        row = len(rows) - 1
                    if el.find("tie[@type='start']") is not None:
                        open_ties[key] = row
            bar_start += beats * 4 / beat_type
    return Notes.of([tuple(r) for r in rows])


def _midi_number(pitch) -> int:
    steps = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    return 12 * (int(pitch.findtext("octave")) + 1) + steps[pitch.findtext("step")] + int(float(pitch.findtext("alter", 0)))


def cut(truth: Annotations, seconds: float) -> Annotations:
    """The annotations up to ``seconds``."""
    sigs = [s for t, s in zip(truth.downbeats, truth.bar_timesigs) if t <= seconds]
    keys = [k for t, k in zip(truth.downbeats, truth.bar_keys) if t <= seconds]
    return Annotations(truth.beats[truth.beats <= seconds], truth.downbeats[truth.downbeats <= seconds], sigs, keys)


def key_accuracy(score, truth: Annotations) -> float:
    """Share of annotated bars whose key signature (fifths) is the one our score has in force there."""
    known = [(t, k) for t, k in zip(truth.downbeats, truth.bar_keys) if k is not None]
    downbeats = np.array(score.downbeat_times)
    if not known or not len(downbeats):
        return float("nan")
    changes = sorted(score.key_changes)
    right = 0
    for t, k in known:
        bar = int(np.searchsorted(downbeats, t + 0.1, side="right")) - 1
        fifths = score.key.fifths
        for at, key in changes:
            if at <= bar:
                fifths = key.fifths
        right += fifths == k
    return right / len(known)


def score_metrics(score, perf, truth: Annotations, composer: Notes | None, true_pos: np.ndarray) -> dict:
    """Every measure of one built score."""
    import mir_eval

    onsets = np.array([n.onset for n in perf.notes])
    pitches = np.array([n.pitch for n in perf.notes])
    written = written_notes(score)
    ours = match_positions(written, onsets, pitches) if written is not None else np.full(len(onsets), np.nan)
    est_beats = np.array(score.beat_times)
    est_down = np.array(score.downbeat_times)
    ts = str(score.time_signature)
    known = truth.known_timesigs
    return {
        "beat_f1": mir_eval.beat.f_measure(mir_eval.beat.trim_beats(truth.beats), mir_eval.beat.trim_beats(est_beats)),
        "downbeat_f1": mir_eval.beat.f_measure(truth.downbeats, est_down),
        "timesig_acc": float(np.mean([s == ts for s in known])) if known else float("nan"),
        "key_acc": key_accuracy(score, truth),
        "position_acc": _accuracy(ours, true_pos),
        **score_measures(composer, written),
        "est_timesig": ts,
        "est_tempo": 60.0 / float(np.median(np.diff(est_beats))) if len(est_beats) > 1 else float("nan"),
    }


def evaluate(perf_path: Path, ann_path: Path, musescore: bool = False, transcribed=None, cut_s: float | None = None,
             models: tuple[str, ...] = SCORE_MODELS) -> dict:
    """All measures for one performance: its true notes, or ``transcribed`` (a Performance of
    the first ``cut_s`` seconds of its audio), for each score model (the first unprefixed, the
    others prefixed by ``PREFIX``)."""
    from kimiwonosete.score.build import build_score

    truth = read_annotations(ann_path)
    perf = read_notes(perf_path) if transcribed is None else transcribed
    onsets = np.array([n.onset for n in perf.notes])
    pitches = np.array([n.pitch for n in perf.notes])
    composer = score_notes(perf_path, truth)
    if cut_s is not None:
        if composer is not None:
            composer = composer.take(composer.played <= cut_s)
        truth = cut(truth, cut_s)
    true_pos = annotated_positions(onsets, truth)
    known = truth.known_timesigs
    row = {"item": str(perf_path), "true_timesig": max(set(known), key=known.count) if known else "",
           "true_tempo": 60.0 / float(np.median(np.diff(truth.beats))) if len(truth.beats) > 1 else float("nan")}
    for model in models:
        t0 = time.perf_counter()
        score = build_score(perf, perf_path.stem, model=model)
        seconds = time.perf_counter() - t0
        prefix = PREFIX.get(model, "") if model != models[0] else ""
        row.update({prefix + k: v for k, v in score_metrics(score, perf, truth, composer, true_pos).items()})
        row[prefix + "seconds"] = seconds
    ms = {"ms_" + k: float("nan") for k in ("position_acc", *SCORE_MEASURES)}
    if musescore and perf_path.suffix == ".mid":
        theirs = musescore_notes(perf_path)
        if theirs is not None:
            ms["ms_position_acc"] = _accuracy(match_positions(theirs, onsets, pitches), true_pos)
            ms.update({"ms_" + k: v for k, v in score_measures(composer, theirs).items()})
    return {**row, **ms}


def audio_transcriber(model: str, seconds: float, cache: Path | None = None):
    """A function: audio path -> Performance of its first ``seconds`` (the model loaded once).
    With ``cache``, each transcription is kept there (pickled, by model, length and file name),
    so a rerun that changes only the score stage transcribes nothing."""
    import pickle

    from kimiwonosete.audio import decode
    from kimiwonosete.files import write_bytes_atomic
    from kimiwonosete.transcription import get_transcriber

    transcriber = None

    def transcribe(path: Path):
        nonlocal transcriber
        kept = cache / f"{model}-{seconds:g}s" / f"{path.stem}.pkl" if cache else None
        if kept is not None and kept.exists():
            return pickle.loads(kept.read_bytes())
        transcriber = transcriber or get_transcriber(model)
        audio = decode(path, transcriber.sample_rate)[: int(round(seconds * transcriber.sample_rate))]
        perf = transcriber.transcribe(audio)
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(kept, pickle.dumps(perf))
        return perf

    return transcribe


def _accuracy(written: np.ndarray, annotated: np.ndarray) -> float:
    counted = ~np.isnan(annotated)
    return float(np.mean(np.abs(written[counted] - annotated[counted]) < 1e-3)) if counted.any() else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--limit", type=int, help="only the first N performances")
    ap.add_argument("--stride", type=int, default=1, help="only every K-th performance (a quick spread-out sample)")
    ap.add_argument("--musescore", action="store_true", help="also score MuseScore 3's MIDI import (baseline)")
    ap.add_argument("--from-audio", action="store_true", help="transcribe each recording's audio (MAPS layout)")
    ap.add_argument("--seconds", type=float, default=60.0, help="with --from-audio: how much of each recording")
    ap.add_argument("--model", default="transkun", help="with --from-audio: the transcription model")
    ap.add_argument("--notes-cache", type=Path, help="with --from-audio: keep the transcriptions here for reruns")
    ap.add_argument("--score-models", default=",".join(SCORE_MODELS),
                    help="score models side by side, comma-separated (measures of the second prefixed h_)")
    args = ap.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"error: {args.data_dir}: no such directory", file=sys.stderr)
        return 2
    items = find_items(args.data_dir)[:: args.stride][: args.limit]
    if not items:
        print(f"error: {args.data_dir}: no annotated performances found", file=sys.stderr)
        return 2
    transcribe = None
    if args.from_audio:
        items = [(perf, ann) for perf, ann in items if perf.suffix == ".tsv" and perf.with_suffix(".flac").exists()]
        transcribe = audio_transcriber(args.model, args.seconds, args.notes_cache)
    models = tuple(args.score_models.split(","))
    metrics = [PREFIX.get(m, "") * (i > 0) + k for i, m in enumerate(models) for k in (*OURS, "seconds")]
    metrics += list(MUSESCORE) if args.musescore else []
    rows = []
    heads = ("beat", "dbeat", "TS", "key", "pos", "dur", "noteF", "staff", "spell", "voice")
    print(f"{'performance':<44} " + " ".join(f"{h:>5}" for h in heads) + f" {'h_beat':>6} {'h_db':>5} {'msNF':>5}"
          + f" {'TS est/true':>11} {'tempo est/true':>15}")
    for perf, ann in items:
        if transcribe is None:
            r = evaluate(perf, ann, args.musescore, models=models)
        else:
            r = evaluate(perf, ann, transcribed=transcribe(perf.with_suffix(".flac")), cut_s=args.seconds, models=models)
        rows.append(r)
        name = str(perf.relative_to(args.data_dir))
        second = PREFIX.get(models[-1], "") if len(models) > 1 else ""
        print(f"{name[-44:]:<44} " + " ".join(f"{r[k]:5.3f}" for k in OURS)
              + f" {r.get(second + 'beat_f1', np.nan):6.3f} {r.get(second + 'downbeat_f1', np.nan):5.3f}"
              + f" {r.get('ms_note_f1', np.nan):5.3f}"
              + f" {r['est_timesig'] + '/' + r['true_timesig']:>11} {r['est_tempo']:7.1f}/{r['true_tempo']:<7.1f}", flush=True)
    means = {k: float(np.nanmean([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else float("nan")
             for k in metrics}
    for i, model in enumerate(models):
        prefix = PREFIX.get(model, "") * (i > 0)
        print(f"MEAN {model:<9} " + "  ".join(f"{k} {means[prefix + k]:.3f}" for k in (*OURS, "seconds"))
              + f"  ({len(rows)} performances)")
    if args.musescore:
        print("MEAN musescore  " + "  ".join(f"{k[3:]} {means[k]:.3f}" for k in MUSESCORE))
    if args.json:
        from kimiwonosete.files import write_bytes_atomic

        write_bytes_atomic(args.json, json.dumps({"rows": rows, "mean": means}, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
