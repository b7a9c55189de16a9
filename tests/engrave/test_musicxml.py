"""MusicXML writer: structure read back with ElementTree, hostile titles, MuseScore 3 import."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import climbing_bass_score, climbing_treble_score, high_treble_score, two_voice_score
from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.score.model import (
    TICKS_PER_QUARTER,
    Event,
    KeySignature,
    Pitch,
    Score,
    Staff,
    TimeSignature,
)

TS = TimeSignature(4, 4)
BAR = TS.bar_ticks
# The XSD sequence of a <note>'s children (the ones the writer can emit).
NOTE_ORDER = ["chord", "pitch", "rest", "duration", "tie", "voice", "type", "dot", "accidental",
              "time-modification", "stem", "staff", "beam", "notations"]

G2 = Pitch(43, "G", 0, 2)
G4, A4, B4 = Pitch(67, "G", 0, 4), Pitch(69, "A", 0, 4), Pitch(71, "B", 0, 4)
C5, D5, E5 = Pitch(72, "C", 0, 5), Pitch(74, "D", 0, 5), Pitch(76, "E", 0, 5)
FS5, G5 = Pitch(78, "F", 1, 5), Pitch(79, "G", 0, 5)


def _score(title: str = "Test") -> Score:
    treble = [
        Event(0, 12, (G4, B4, D5), 80),  # a chord, quarter
        Event(12, 4, (C5, E5), 80), Event(16, 4, (FS5,), 80), Event(20, 4, (G5,), 80),  # triplet beat
        Event(24, 9, (A4,), 80), Event(33, 3, (B4,), 80),  # dotted 8th + 16th
        Event(36, 24, (D5,), 80),  # quarter tied across the bar line
        Event(60, 36, (C5,), 80),  # dotted half
    ]
    bass = [Event(0, 48, (G2,), 70), Event(48, 48)]  # whole note, then a whole-bar rest
    return Score(title, TS, KeySignature(1), 96.4, 2, [Staff("treble", treble), Staff("bass", bass)])


def _pickup_score() -> Score:
    """A quarter-note pickup in the treble, the bass silent until bar 1; a dynamic and the pedal."""
    treble = [Event(0, BAR - 12), Event(BAR - 12, 12, (D5,), 80), Event(BAR, BAR, (G4, B4), 80)]
    bass = [Event(0, BAR), Event(BAR, BAR, (G2,), 70)]
    return Score("Pickup", TS, KeySignature(1), 96.0, 2, [Staff("treble", treble), Staff("bass", bass)], pickup=BAR - 12,
                 pedal=((BAR, BAR + 24),), dynamics=((BAR - 12, "mp"),))


def test_second_voice_has_its_own_voice_number_and_only_where_it_plays() -> None:
    measures = _measures(_parse(musicxml_bytes(two_voice_score())))
    voices = [sorted({n.findtext("voice") for n in m.iter("note")}) for m in measures]
    assert voices == [["1", "2", "5"], ["1", "5"]]
    first = measures[0]
    assert [int(b.findtext("duration")) for b in first.iter("backup")] == [BAR, BAR]


def _key_change_score() -> Score:
    score = two_voice_score()
    score.key_changes = ((1, KeySignature(-2, "minor")),)
    return score


def _linked_score() -> Score:
    """A score made from a link: its uploader and address are credited (untrusted text)."""
    score = _score()
    score.uploader, score.url = "Pianist <&> \x07Channel", "https://example.org/watch?v=1&t=2"
    return score


#: Every kind of score the writer must get right, for the whole-document checks.
SCORES = [_score, _pickup_score, two_voice_score, climbing_bass_score, _key_change_score, high_treble_score,
          climbing_treble_score, _linked_score]


def _parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)


def _measures(root: ET.Element) -> list[ET.Element]:
    parts = root.findall("part")
    assert len(parts) == 1 and parts[0].get("id") == "P1"
    return parts[0].findall("measure")


def _name(note: ET.Element) -> str:
    p = note.find("pitch")
    if p is None:
        return "r"
    alter = {"1": "#", "-1": "b"}.get(p.findtext("alter", ""), "")
    return f"{p.findtext('step')}{alter}{p.findtext('octave')}"


def test_document_header_and_attributes() -> None:
    data = musicxml_bytes(_score())
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"')
    assert b'<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN"' in data
    root = _parse(data)
    assert root.tag == "score-partwise" and root.get("version") == "4.0"
    assert root.findtext("work/work-title") == "Test" == root.findtext("movement-title")
    assert root.findtext("identification/encoding/software") == "KimiWoNosete"
    assert root.findtext("part-list/score-part/part-name") == "Piano"
    assert root.findtext("part-list/score-part/score-instrument/instrument-name") == "Piano"
    first = _measures(root)[0]
    attrs = first.find("attributes")
    assert attrs is not None
    assert attrs.findtext("divisions") == str(TICKS_PER_QUARTER)
    assert (attrs.findtext("key/fifths"), attrs.findtext("key/mode")) == ("1", "major")
    assert (attrs.findtext("time/beats"), attrs.findtext("time/beat-type")) == ("4", "4")
    assert attrs.findtext("staves") == "2"
    clefs = {c.get("number"): (c.findtext("sign"), c.findtext("line")) for c in attrs.findall("clef")}
    assert clefs == {"1": ("G", "2"), "2": ("F", "4")}
    assert first.findtext("direction/direction-type/metronome/per-minute") == "96"
    sound = first.find("direction/sound")
    assert sound is not None and sound.get("tempo") == "96"
    assert _measures(root)[1].find("attributes") is None


def test_measures_durations_and_note_order() -> None:
    measures = _measures(_parse(musicxml_bytes(_score())))
    assert [m.get("number") for m in measures] == ["1", "2"]
    for m in measures:
        totals = {"1": 0, "2": 0}
        staff_seen: list[str] = []
        for el in m:
            if el.tag == "backup":
                assert el.findtext("duration") == str(BAR)
            if el.tag != "note":
                continue
            tags = [c.tag for c in el]
            assert tags == sorted(tags, key=NOTE_ORDER.index), tags
            staff = el.findtext("staff")
            assert staff in totals
            assert el.findtext("voice") == {"1": "1", "2": "5"}[staff]
            staff_seen.append(staff)
            if el.find("chord") is None:
                totals[staff] += int(el.findtext("duration") or 0)
        assert totals == {"1": BAR, "2": BAR}
        assert staff_seen == sorted(staff_seen)  # staff 1, then (after <backup>) staff 2
        assert len(m.findall("backup")) == 1
    barline = measures[-1].find("barline")
    assert barline is not None and barline.get("location") == "right"
    assert barline.findtext("bar-style") == "light-heavy"
    assert measures[0].find("barline") is None


def test_chord_triplet_dots_ties_and_rests() -> None:
    measures = _measures(_parse(musicxml_bytes(_score())))
    notes = [n for m in measures for n in m.findall("note")]
    treble = [n for n in notes if n.findtext("staff") == "1"]
    bass = [n for n in notes if n.findtext("staff") == "2"]

    # The chord: G4 a normal note, B4 and D5 with <chord/>.
    assert [(_name(n), n.find("chord") is not None) for n in treble[:3]] == [
        ("G4", False), ("B4", True), ("D5", True)]
    assert {n.findtext("duration") for n in treble[:3]} == {"12"}
    assert [_name(n) for n in notes if n.find("chord") is not None] == ["B4", "D5", "E5"]

    # The triplet beat: three 8ths of 4 ticks (the first a chord), 3:2, bracket from the first
    # to the last, marked on a chord's first note only.
    trip = treble[3:7]
    assert [_name(n) for n in trip] == ["C5", "E5", "F#5", "G5"]
    assert trip[2].findtext("pitch/alter") == "1" and trip[0].find("pitch/alter") is None
    for n in trip:
        assert (n.findtext("duration"), n.findtext("type")) == ("4", "eighth")
        assert n.findtext("time-modification/actual-notes") == "3"
        assert n.findtext("time-modification/normal-notes") == "2"
    tuplets = [(i, t.get("type")) for i, n in enumerate(notes) for t in n.iter("tuplet")]
    assert tuplets == [(notes.index(trip[0]), "start"), (notes.index(trip[3]), "stop")]
    assert sum(n.find("time-modification") is not None for n in notes) == 4

    # Dotted values: a dotted 8th (A4) and a dotted half (C5).
    dotted = [(_name(n), n.findtext("type"), len(n.findall("dot"))) for n in notes if n.find("dot") is not None]
    assert dotted == [("A4", "eighth", 1), ("C5", "half", 1)]

    # The tie across the bar line: D5 (last of bar 1) -> D5 (first of bar 2), nothing else.
    ties = [(_name(n), t.get("type")) for n in notes for t in n.findall("tie")]
    tied = [(_name(n), t.get("type")) for n in notes for t in n.iter("tied")]
    assert ties == tied == [("D5", "start"), ("D5", "stop")]
    start = next(n for n in treble if n.find("tie[@type='start']") is not None)
    stop = next(n for n in treble if n.find("tie[@type='stop']") is not None)
    assert start in measures[0].findall("note") and stop in measures[1].findall("note")

    # Bass: a whole note, then a whole-bar rest without a type.
    assert [(_name(n), n.findtext("type")) for n in bass] == [("G2", "whole"), ("r", None)]
    rest = bass[1].find("rest")
    assert rest is not None and rest.get("measure") == "yes"
    assert bass[1].findtext("duration") == str(BAR)


def test_hostile_title_round_trips() -> None:
    data = musicxml_bytes(_score("<x>&\x01</x>\ud800\ufffe ok"))
    assert b"\x01" not in data and b"<x>" not in data
    root = _parse(data)  # well-formed
    assert root.findtext("work/work-title") == "<x>&</x> ok"
    assert root.findtext("movement-title") == "<x>&</x> ok"


def test_a_links_uploader_and_address_are_credited() -> None:
    root = _parse(musicxml_bytes(_linked_score()))
    assert root.findtext("identification/creator[@type='recording']") == "Pianist <&> Channel"
    assert root.findtext("identification/source") == "https://example.org/watch?v=1&t=2"


def test_pickup_is_an_implicit_measure_zero_as_long_as_the_pickup() -> None:
    measures = _measures(_parse(musicxml_bytes(_pickup_score())))
    assert [(m.get("number"), m.get("implicit")) for m in measures] == [("0", "yes"), ("1", None)]
    for staff in ("1", "2"):
        notes = [n for n in measures[0].iter("note") if n.findtext("staff") == staff and n.find("chord") is None]
        assert sum(int(n.findtext("duration")) for n in notes) == TICKS_PER_QUARTER
    assert [_name(n) for n in measures[0].iter("note")] == ["D5", "r"]


@pytest.mark.skipif(
    not (shutil.which("mscore3") or shutil.which("musescore3")),
    reason="MuseScore 3 (mscore3 / musescore3) is not installed",
)
def test_clef_changes_where_a_hand_moves_far() -> None:
    measures = _measures(_parse(musicxml_bytes(climbing_bass_score())))
    changes = [(i, c.get("number"), c.findtext("sign")) for i, m in enumerate(measures) for c in m.iter("clef")]
    assert changes == [(0, "1", "G"), (0, "2", "F"), (1, "2", "G"), (3, "2", "F")]


@pytest.mark.parametrize("make", SCORES)
def test_musescore3_opens_it(make, tmp_path: Path) -> None:
    binary = shutil.which("mscore3") or shutil.which("musescore3")
    assert binary is not None
    src, pdf = tmp_path / "in.musicxml", tmp_path / "out.pdf"
    src.write_bytes(musicxml_bytes(make()))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([binary, "-o", str(pdf), str(src)], env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert pdf.is_file() and pdf.stat().st_size > 0, (run.returncode, run.stdout, run.stderr)
    # MuseScore's importer logs what it had to repair as "Error at line L col C: ...".
    assert "Error at line" not in run.stdout + run.stderr, run.stdout + run.stderr


@pytest.mark.parametrize("make", SCORES)
def test_valid_against_the_musicxml_schema(make) -> None:
    import xmlschema
    from partitura import assets

    schema = xmlschema.XMLSchema(str(Path(assets.__path__[0]) / "musicxml.xsd"))  # MusicXML 3.1, offline
    errors = list(schema.iter_errors(musicxml_bytes(make()).decode()))
    assert not errors, str(errors[0])


def test_key_change_is_written_in_its_measure() -> None:
    measures = _measures(_parse(musicxml_bytes(_key_change_score())))
    assert [m.findtext("attributes/key/fifths") for m in measures] == ["1", "-2"]
    assert measures[1].findtext("attributes/key/mode") == "minor"


@pytest.mark.parametrize("high, expected", [(range(1, 3), [(1, "down"), (3, "stop")]), (range(2, 4), [(2, "down"), (3, "stop")])])
def test_octave_sign_over_a_high_passage_is_opened_and_closed(high, expected) -> None:
    measures = _measures(_parse(musicxml_bytes(high_treble_score(high))))
    shifts = [(i, s.get("type")) for i, m in enumerate(measures) for s in m.iter("octave-shift")]
    assert shifts == expected


def test_an_8va_turning_15ma_stops_the_one_and_starts_the_other() -> None:
    measures = _measures(_parse(musicxml_bytes(climbing_treble_score())))
    shifts = [(i, s.get("type"), s.get("size")) for i, m in enumerate(measures) for s in m.iter("octave-shift")]
    assert shifts == [(1, "down", "8"), (2, "stop", "8"), (2, "down", "15"), (3, "stop", "15")]
