"""Notes and scores as versioned JSON: what is read back engraves exactly as what was written."""

from __future__ import annotations

import json

import pytest

from helpers import climbing_bass_score, two_voice_score
from kimiwonosete.engrave.lilypond import lilypond_source
from kimiwonosete.engrave.midi import performance_midi, score_midi
from kimiwonosete.engrave.musicxml import musicxml_bytes
from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.score.build import build_score
from kimiwonosete.score.model import Score


def _through_json(data: dict) -> dict:
    return json.loads(json.dumps(data))


@pytest.fixture(scope="module")
def played(example_notes: list[Note]) -> Performance:
    pedals = [Pedal(1.0, 2.5), Pedal(4.0, 4.75)]
    return Performance(list(example_notes), pedals, duration=max(n.offset for n in example_notes) + 0.5)


def test_a_performance_round_trips_exactly(played: Performance) -> None:
    back = Performance.from_dict(_through_json(played.to_dict()))
    assert back == played
    assert performance_midi(back) == performance_midi(played)


def test_a_built_score_round_trips_to_an_identical_engraving(played: Performance) -> None:
    score = build_score(played, 'Minuet "in G" #(system "x")')
    score.uploader, score.url = "someone", "https://example.org/v?x=1"
    assert score.note_count > 40 and score.pedal and score.dynamics and score.beat_times  # a real score, with every part in use
    back = Score.from_dict(_through_json(score.to_dict()))
    assert back == score
    assert lilypond_source(back) == lilypond_source(score)
    assert musicxml_bytes(back) == musicxml_bytes(score)
    assert score_midi(back) == score_midi(score)


@pytest.mark.parametrize("make", [two_voice_score, climbing_bass_score])
def test_second_voices_and_grace_notes_round_trip(make) -> None:
    score = make()
    back = Score.from_dict(_through_json(score.to_dict()))
    assert back == score and lilypond_source(back) == lilypond_source(score)


def test_other_layouts_and_shapes_are_refused(played: Performance) -> None:
    data = played.to_dict()
    with pytest.raises(ValueError, match="layout 2 cannot be read"):
        Performance.from_dict({**data, "version": 2})
    with pytest.raises(ValueError, match="not a score"):
        Score.from_dict(data)
    with pytest.raises(ValueError, match="expected int"):
        Performance.from_dict({**data, "notes": [{"onset": 0.0, "offset": 1.0, "pitch": "C4", "velocity": 80}]})


def test_the_stages_references_round_trip() -> None:
    from pathlib import Path

    from kimiwonosete.pipeline.stages import Samples, Source
    from kimiwonosete.serial import from_plain, to_plain
    from kimiwonosete.sources.links import Download
    from kimiwonosete.transcription.chunks import Chunk, plan_chunks

    link = Download(Path("/cache/abc/media.webm"), "https://example.org/v", 'Title "x"', "Someone", None, "abc")
    for source in (Source(Path("piece.flac")), Source(link.path, link)):
        assert Source.from_dict(_through_json(source.to_dict())) == source
    samples = Samples("0123abcd", 44100, 44100 * 180)
    assert Samples.from_dict(_through_json(samples.to_dict())) == samples
    plan = plan_chunks(samples.n_samples, samples.sample_rate, workers=2)
    assert from_plain(list[Chunk], _through_json(to_plain(plan))) == plan
