"""MusicXML 4.0 (partwise) writer for a :class:`~kimiwonosete.score.model.Score`.

Why: MusicXML is what notation programs (MuseScore, Finale, Dorico, Sibelius) import, so users
can edit the transcription there. The written values come from
:func:`~kimiwonosete.score.notation.written_bars`, the same ones the LilyPond engraver writes,
so both outputs agree note for note. The document is built with ElementTree, which escapes the
(untrusted) title; characters XML 1.0 cannot hold at all are removed first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kimiwonosete.engrave.text import clean_text
from kimiwonosete.score.model import TICKS_PER_QUARTER, KeySignature, Pitch, Score
from kimiwonosete.score.notation import (
    PEDAL_DOWN,
    PEDAL_UP,
    Written,
    clef_changes,
    ottava_changes,
    staff_marks,
    written_bars,
)

SOFTWARE = "KimiWoNosete"
PART_ID = "P1"
PART_NAME = "Piano"
INSTRUMENT_ID = "P1-I1"
MIDI_CHANNEL, MIDI_PROGRAM = 1, 1  # General MIDI program 1: Acoustic Grand Piano (1-based)
VOICES_PER_STAFF = 4  # staff 1 -> voice 1, staff 2 -> voice 5 (MuseScore's convention)
CLEFS = {"treble": ("G", 2), "bass": ("F", 4)}
TYPES = {1: "whole", 2: "half", 4: "quarter", 8: "eighth", 16: "16th"}
TRIPLET_ACTUAL, TRIPLET_NORMAL = 3, 2
PEDAL_TYPES = {PEDAL_DOWN: "start", PEDAL_UP: "stop"}
# Not encoded here: readers should compute them themselves.
UNSUPPORTED = ("accidental", "beam", "stem")
HEADER = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    '<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
    '"http://www.musicxml.org/dtds/partwise.dtd">\n'
)
def _sub(parent: ET.Element, tag: str, text: str | int | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = str(text)
    return el


def _header(root: ET.Element, score: Score) -> None:
    title = clean_text(score.title)
    if title:
        _sub(_sub(root, "work"), "work-title", title)
        _sub(root, "movement-title", title)
    identification = _sub(root, "identification")
    if score.uploader:
        _sub(identification, "creator", clean_text(score.uploader), type="recording")
    encoding = _sub(identification, "encoding")
    _sub(encoding, "software", SOFTWARE)
    for element in UNSUPPORTED:
        _sub(encoding, "supports", element=element, type="no")
    if score.url:
        _sub(identification, "source", clean_text(score.url))
    score_part = _sub(_sub(root, "part-list"), "score-part", id=PART_ID)
    _sub(score_part, "part-name", PART_NAME)
    # Without an instrument, MuseScore 3 reports "no instrument found for part".
    _sub(_sub(score_part, "score-instrument", id=INSTRUMENT_ID), "instrument-name", PART_NAME)
    midi = _sub(score_part, "midi-instrument", id=INSTRUMENT_ID)
    _sub(midi, "midi-channel", MIDI_CHANNEL)
    _sub(midi, "midi-program", MIDI_PROGRAM)


def _attributes(measure: ET.Element, score: Score) -> None:
    attributes = _sub(measure, "attributes")
    _sub(attributes, "divisions", TICKS_PER_QUARTER)
    _key(attributes, score.key)
    time = _sub(attributes, "time")
    _sub(time, "beats", score.time_signature.numerator)
    _sub(time, "beat-type", score.time_signature.denominator)
    _sub(attributes, "staves", len(score.staves))
    for number, staff in enumerate(score.staves, start=1):
        _clef(attributes, number, staff.clef)


def _key(attributes: ET.Element, key: KeySignature) -> None:
    element = _sub(attributes, "key")
    _sub(element, "fifths", key.fifths)
    _sub(element, "mode", key.mode)


def _clef(attributes: ET.Element, staff: int, name: str) -> None:
    if name not in CLEFS:
        raise ValueError(f"unknown clef {name!r}")
    sign, line = CLEFS[name]
    clef = _sub(attributes, "clef", number=str(staff))
    _sub(clef, "sign", sign)
    _sub(clef, "line", line)


def _tempo(measure: ET.Element, tempo: float) -> None:
    bpm = str(max(1, round(tempo)))
    direction = _sub(measure, "direction", placement="above")
    metronome = _sub(_sub(direction, "direction-type"), "metronome")
    _sub(metronome, "beat-unit", "quarter")
    _sub(metronome, "per-minute", bpm)
    _sub(direction, "staff", 1)
    _sub(direction, "sound", tempo=bpm)


def _octave_shift(measure: ET.Element, staff: int, shift: int, before: int) -> None:
    """The octave sign changing from ``before`` to ``shift`` here (1 8va, 2 15ma, -1 8vb, 0
    none): the old one stops, the new one starts. The notes keep their sounding pitch;
    MusicXML's type says which way the display moves."""
    for value, kind in ((before, "stop"), (shift, "down" if shift > 0 else "up")):
        if value == 0:
            continue
        direction = _sub(measure, "direction", placement="above" if value > 0 else "below")
        _sub(_sub(direction, "direction-type"), "octave-shift", type=kind, size=str(7 * abs(value) + 1))
        _sub(direction, "staff", staff)


def _direction(measure: ET.Element, mark: str, staff: int) -> None:
    """A pedal or dynamic mark under ``staff``, at the note written next."""
    direction = _sub(measure, "direction", placement="below")
    kind = _sub(direction, "direction-type")
    if mark in PEDAL_TYPES:
        _sub(kind, "pedal", type=PEDAL_TYPES[mark], line="no", sign="yes")
    else:
        _sub(_sub(kind, "dynamics"), mark)
    _sub(direction, "staff", staff)


def _pitch(note: ET.Element, pitch: Pitch) -> None:
    p = _sub(note, "pitch")
    _sub(p, "step", pitch.step)
    if pitch.alter:
        _sub(p, "alter", pitch.alter)
    _sub(p, "octave", pitch.octave)


def _notes(measure: ET.Element, w: Written, staff: int, voice: int, tied_in: frozenset[Pitch]) -> None:
    """Write one written value (note, chord or rest) of ``voice`` (0 upper, 1 lower) on ``staff`` (1 or 2);
    ``tied_in``: pitches tied from the previous one."""
    for pitch in w.grace:  # grace notes take no time: no <duration>
        note = _sub(measure, "note")
        _sub(note, "grace", **({"slash": "yes"} if len(w.grace) == 1 else {}))
        _pitch(note, pitch)
        _sub(note, "voice", 1 + voice + (staff - 1) * VOICES_PER_STAFF)
        _sub(note, "type", "eighth" if len(w.grace) == 1 else "16th")
        _sub(note, "staff", staff)
    for i, pitch in enumerate(w.pitches or (None,)):
        # A second voice's rests are not printed (as in the LilyPond output).
        note = _sub(measure, "note", **({"print-object": "no"} if voice and pitch is None else {}))
        if i:
            _sub(note, "chord")
        if pitch is None:
            _sub(note, "rest", **({"measure": "yes"} if w.base == 0 else {}))
        else:
            _pitch(note, pitch)
        _sub(note, "duration", w.ticks)
        ties = [t for t, on in (("stop", pitch in tied_in), ("start", w.tie and pitch is not None)) if on]
        for t in ties:
            _sub(note, "tie", type=t)
        _sub(note, "voice", 1 + voice + (staff - 1) * VOICES_PER_STAFF)
        if w.base:
            _sub(note, "type", TYPES[w.base])
        for _ in range(w.dots):
            _sub(note, "dot")
        if w.triplet:
            modification = _sub(note, "time-modification")
            _sub(modification, "actual-notes", TRIPLET_ACTUAL)
            _sub(modification, "normal-notes", TRIPLET_NORMAL)
        _sub(note, "staff", staff)
        tuplets = [t for t, on in (("start", w.tuplet_start), ("stop", w.tuplet_stop)) if on and i == 0]
        if ties or tuplets:
            notations = _sub(note, "notations")
            for t in ties:
                _sub(notations, "tied", type=t)
            for t in tuplets:
                _sub(notations, "tuplet", type=t)


def musicxml_bytes(score: Score) -> bytes:
    """The score as a complete MusicXML 4.0 partwise document (UTF-8)."""
    ts = score.time_signature
    n_bars = max(score.n_bars, 1)  # a part needs at least one measure
    root = ET.Element("score-partwise", version="4.0")
    _header(root, score)
    part = _sub(root, "part", id=PART_ID)
    # (staff, voice, bars) in writing order; the second voice is left out of bars where it is silent.
    streams = [(s, v, written_bars(events, ts, n_bars, score.pickup))
               for s, staff in enumerate(score.staves) for v, events in enumerate(staff.voices)]
    tied_in: list[frozenset[Pitch]] = [frozenset() for _ in streams]
    marks = dict(score.marks)
    directions = {s: staff_marks(bars, s, score) for s, v, bars in streams if v == 0}
    clefs = [clef_changes(staff, ts, n_bars) for staff in score.staves]
    keys = dict(score.key_changes)
    ottavas = [ottava_changes(staff, s, ts, n_bars) for s, staff in enumerate(score.staves)]
    shifted = [0] * len(ottavas)  # each staff's octave sign in force
    for b in range(n_bars):
        # A pickup is measure 0, marked implicit so readers do not count it as bar 1.
        first = 0 if score.pickup else 1
        measure = _sub(part, "measure", number=str(b + first), **({"implicit": "yes"} if b == 0 and first == 0 else {}))
        if b == 0:
            _attributes(measure, score)
        changes = [(s, c[b]) for s, c in enumerate(clefs) if b in c]
        if changes or b in keys:
            attributes = _sub(measure, "attributes")
            if b in keys:
                _key(attributes, keys[b])
            for s, name in changes:
                _clef(attributes, s + 1, name)
        if b in marks:
            _tempo(measure, marks[b])
        for s, shifts in enumerate(ottavas):
            if b in shifts:
                _octave_shift(measure, s + 1, shifts[b], shifted[s])
                shifted[s] = shifts[b]
        written = 0  # how far the last stream wrote into the bar, to back up by before the next
        for k, (s, v, bars) in enumerate(streams):
            if v and all(w.is_rest for w in bars[b]):
                continue
            if written:
                _sub(_sub(measure, "backup"), "duration", written)
            for i, w in enumerate(bars[b]):
                for mark in directions.get(s, {}).get((b, i), []) if v == 0 else []:
                    _direction(measure, mark, s + 1)
                _notes(measure, w, s + 1, v, tied_in[k])
                tied_in[k] = frozenset(w.pitches) if w.tie else frozenset()
            written = sum(w.ticks for w in bars[b])
        if b == n_bars - 1:
            for s, shift in enumerate(shifted):
                if shift:  # still shifted at the end: close it
                    _octave_shift(measure, s + 1, 0, shift)
            _sub(_sub(measure, "barline", location="right"), "bar-style", "light-heavy")
    ET.indent(root, space="  ")
    return (HEADER + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")
