"""Performance (notes in seconds) -> Score (two staves of chords and rests in ticks)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from kimiwonosete.notes import Performance
from kimiwonosete.score.beats import beat_grid
from kimiwonosete.score.directions import dynamic_marks, pedal_marks
from kimiwonosete.score.hands import BASS, TREBLE, assign_staves, lift_stray_notes
from kimiwonosete.score.key import estimate_key, key_changes, local_keys, named_like, spell, spell_notes
from kimiwonosete.score.learned.decode import analyse
from kimiwonosete.score.meter import choose_meter
from kimiwonosete.score.model import TICKS_PER_QUARTER, Event, KeySignature, Pitch, Score, Staff, TimeSignature
from kimiwonosete.score.ornaments import split_ornaments
from kimiwonosete.score.quantize import EARLY, beat_positions, choose_grids, quantize, times_of_beats
from kimiwonosete.score.tempo import tempo_marks

CLEFS = ("treble", "bass")
LEGATO_GAP = 0.25  # a rest shorter than this share of the chord before it is absorbed by it
VOICE_MIN_GAP = TICKS_PER_QUARTER // 2  # notes of a chord released this much apart can be two voices
DEFAULT_TEMPO = 100.0
PICKUP_GRID = TICKS_PER_QUARTER // 4
SCORE_MODELS = ("learned", "heuristic")
DEFAULT_MODEL = "learned"


def empty_score(title: str) -> Score:
    """One bar of rest: what silence becomes."""
    staves = [Staff(clef, []) for clef in CLEFS]
    ts = TimeSignature(4, 4)
    for staff in staves:
        staff.events.append(Event(0, ts.bar_ticks))
    return Score(title, ts, KeySignature(0), DEFAULT_TEMPO, 1, staves)


def build_score(performance: Performance, title: str, model: str = DEFAULT_MODEL) -> Score:
    """Estimate beats, meter and keys, quantize, split hands and voices, and add the directions.

    ``model``: ``"learned"`` reads beats, bars, metre and staves with the trained score model
    (:mod:`kimiwonosete.score.learned`); ``"heuristic"`` with the rules (periodicity beat
    tracking, accent-based metre, a hand-split Viterbi). In both, keys come from the key profiles
    and spellings from each note's context within its key (:func:`kimiwonosete.score.key.spell_notes`).
    """
    if model not in SCORE_MODELS:
        raise ValueError(f"score model {model!r}: not one of {', '.join(SCORE_MODELS)}")
    notes, graces = split_ornaments([n for n in performance.notes if n.offset > n.onset])
    if not notes:
        return empty_score(title)
    duration = max(performance.duration, max(n.offset for n in notes))
    found = analyse(notes, duration) if model == "learned" else None
    beats = found.beats if found else beat_grid(notes, duration)
    onsets = beat_positions(np.array([n.onset for n in notes]), beats)
    offsets = beat_positions(np.array([n.offset for n in notes]), beats)
    pitches = np.array([n.pitch for n in notes])
    ts, phase = (found.time_signature, found.phase) if found else choose_meter(onsets, offsets - onsets, pitches)
    m = ts.beats_per_bar
    # Bar 1 starts on the last downbeat at or before the first onset.
    first = int(np.floor(onsets.min() + EARLY))
    origin = first - ((first - phase) % m)
    grids = choose_grids(onsets - origin, ts.beat_ticks)
    default_grid = 3 if ts.compound else 2
    on_ticks = quantize(onsets - origin, grids, ts.beat_ticks, default_grid)
    off_ticks = quantize(offsets - origin, grids, ts.beat_ticks, default_grid)
    min_ticks = np.array([
        ts.beat_ticks // grids.get(int(t // ts.beat_ticks), default_grid) for t in on_ticks
    ])
    off_ticks = np.maximum(off_ticks, on_ticks + min_ticks)

    # Accidentals follow the notes' context within the key in force; the signature changes
    # only for a long stretch in a new key.
    key = estimate_key(notes)
    local = named_like(local_keys(notes), key)
    staff_of = lift_stray_notes(notes, found.staff if found else assign_staves(notes))
    key_at = {int(t): k for t, k in zip(on_ticks, local)}
    names = {(int(t), n.pitch): p for t, n, p in zip(on_ticks, notes, spell_notes(notes, local))}

    chords: list[dict[int, dict[int, tuple[int, int]]]] = [defaultdict(dict), defaultdict(dict)]
    for i, n in enumerate(notes):
        chord = chords[staff_of[i]][int(on_ticks[i])]
        end, vel = chord.get(n.pitch, (0, 0))
        chord[n.pitch] = (max(end, int(off_ticks[i])), max(vel, int(n.velocity)))
    ends = [max((e for c in ch.values() for e, _ in c.values()), default=0) for ch in chords]
    n_bars = max(1, -(-max(ends) // ts.bar_ticks))
    staves = []
    for s in (TREBLE, BASS):
        upper, lower = split_voices(chords[s])
        staves.append(Staff(CLEFS[s], _voice(upper, names, n_bars * ts.bar_ticks),
                            _voice(lower, names, n_bars * ts.bar_ticks) if lower else []))
    for ornament, main in graces:
        tick = int(on_ticks[main])
        _add_grace(staves[staff_of[main]], tick, notes[main].pitch, spell(ornament.pitch, key_at[tick]))
    quarters_per_beat = ts.beat_ticks / TICKS_PER_QUARTER
    tempo = 60.0 / float(np.median(np.diff(beats))) * quarters_per_beat
    played = times_of_beats(origin + np.arange(n_bars * m, dtype=float), beats)
    marks = tempo_marks(played, m, quarters_per_beat)
    pickup = _pickup(int(on_ticks.min()), ts)
    bar_of_note = on_ticks // ts.bar_ticks
    keys_in_bar: list[list[KeySignature]] = [[] for _ in range(n_bars)]
    for b, k in zip(bar_of_note.tolist(), local):
        keys_in_bar[b].append(k)
    # Ties go to the key heard first (over a set, they went by hash order: differently each run).
    bar_keys = [max(ks, key=ks.count) if ks else None for ks in keys_in_bar]
    changes = key_changes(bar_keys, key)
    if changes and changes[0][0] == 0:  # the piece opens at length in another key: start in it
        key, changes = changes[0][1], changes[1:]
    pedal = ()
    if performance.pedals:
        down = beat_positions(np.array([p.onset for p in performance.pedals]), beats) - origin
        up = beat_positions(np.array([p.offset for p in performance.pedals]), beats) - origin
        pedal = pedal_marks(quantize(down, grids, ts.beat_ticks, default_grid),
                            np.minimum(quantize(up, grids, ts.beat_ticks, default_grid), n_bars * ts.bar_ticks), pickup)
    velocities = np.array([n.velocity for n in notes], dtype=float)
    dynamics = dynamic_marks(bar_of_note, velocities, on_ticks)
    return Score(title, ts, key, round(tempo, 1), n_bars, staves, tuple(float(t) for t in played), tuple(marks),
                 pickup, pedal, dynamics, changes)


def _pickup(first_onset: int, ts: TimeSignature) -> int:
    """Where the anacrusis starts when the music starts after bar 1's downbeat (0: a full bar 1).

    On the 16th grid, or on the beat when the first onset is on a triplet: the pickup's length
    must be one LilyPond and MusicXML can write as plain values.
    """
    step = PICKUP_GRID if first_onset % PICKUP_GRID == 0 else ts.beat_ticks
    return first_onset // step * step


Chords = dict[int, dict[int, tuple[int, int]]]  # start tick -> pitch -> (end tick, velocity)


def split_voices(chords: Chords) -> tuple[Chords, Chords]:
    """One staff's chords into an upper and a lower voice, where lines overlap.

    A single voice cuts a held note at the next chord (a melody note held over its
    accompaniment would turn into a short note and rests). So a chord goes to a second voice
    when the first is still sounding, and a chord whose notes end at clearly different times
    (a held bass under moving notes) is split by register: the upper part above, the lower
    below. Where nothing overlaps, everything stays in the first voice (the lower one is empty).
    """
    voices: tuple[Chords, Chords] = ({}, {})
    busy = [0, 0]  # until when each voice sounds
    sounding: list[int | None] = [None, None]  # the start of each voice's last chord
    for start in sorted(chords):
        notes = chords[start]
        groups = _by_release(start, notes)
        if len(groups) == 2:
            placed = [(0, groups[0]), (1, groups[1])]  # (voice, notes): upper part first
        else:
            free = [busy[v] <= start for v in (0, 1)]
            if free[0]:
                v = 0
            elif free[1]:
                v = 1
                held = sounding[0]
                # A chord above a held one: the held chord becomes the lower voice if it can.
                if held is not None and min(notes) > max(voices[0][held]) and busy[1] <= held:
                    voices[1][held] = voices[0].pop(held)
                    busy[1], sounding[1] = busy[0], held
                    v = 0
            else:
                v = 0
            placed = [(v, notes)]
        for v, part in placed:
            voices[v][start] = part
            busy[v] = max(e for e, _ in part.values())
            sounding[v] = start
    return voices


def _by_release(start: int, notes: dict[int, tuple[int, int]]) -> list[dict[int, tuple[int, int]]]:
    """A chord as one group, or as two (upper, lower) when some notes are held much longer than
    the others and the held and the short ones do not interleave in pitch."""
    ends = sorted({e for e, _ in notes.values()})
    if len(ends) < 2:
        return [notes]
    short = ends[0] - start
    gaps = [(b - a, a) for a, b in zip(ends, ends[1:])]
    gap, cut = max(gaps)
    if gap <= LEGATO_GAP * max(short, 1) + VOICE_MIN_GAP:
        return [notes]
    held = {p: n for p, n in notes.items() if n[0] > cut}
    moving = {p: n for p, n in notes.items() if n[0] <= cut}
    if min(held) > max(moving):
        return [held, moving]
    if max(held) < min(moving):
        return [moving, held]
    return [notes]


def _add_grace(staff: Staff, tick: int, main: int, grace: Pitch) -> None:
    """Put ``grace`` before the chord starting at ``tick`` that holds the main pitch."""
    for voice in staff.voices:
        for e in voice:
            if e.start == tick and any(p.midi == main for p in e.pitches):
                e.grace += (grace,)
                return


def _voice(chords: Chords, names: dict[tuple[int, int], Pitch], total: int) -> list[Event]:
    """One voice: chords held until their notes end or the next chord starts; rests between.
    ``names``: each note's spelling, by (start tick, MIDI pitch).

    A chord released a little early (by at most ``LEGATO_GAP`` of its length) is held to the
    next chord instead: a dotted half played a little short is written as one, not as a half
    tied to an eighth and an eighth rest.
    """
    events: list[Event] = []
    starts = sorted(chords)
    pos = 0
    for i, start in enumerate(starts):
        if start > pos:
            events.append(Event(pos, start - pos))
        notes = chords[start]
        end = max(e for e, _ in notes.values())
        if i + 1 < len(starts):
            following = starts[i + 1]
            if following - end <= LEGATO_GAP * (end - start):
                end = following
            end = min(end, following)
        pitches = tuple(names[start, p] for p in sorted(notes))
        velocity = max(v for _, v in notes.values())
        events.append(Event(start, end - start, pitches, velocity))
        pos = end
    if pos < total:
        events.append(Event(pos, total - pos))
    return events
