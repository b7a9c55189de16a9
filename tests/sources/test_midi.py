"""A MIDI performance as input."""

from __future__ import annotations

import json
from pathlib import Path

import pretty_midi
import pytest

from helpers import run_cli
from kimiwonosete.errors import InputError
from kimiwonosete.examples import example_midi
from kimiwonosete.sources.midi import read_performance


@pytest.fixture
def performance_mid(tmp_path: Path) -> Path:
    midi = example_midi()
    piano = midi.instruments[0]
    piano.control_changes += [pretty_midi.ControlChange(64, 127, 1.0), pretty_midi.ControlChange(64, 0, 2.5),
                              pretty_midi.ControlChange(64, 100, 4.0), pretty_midi.ControlChange(64, 20, 4.75)]
    path = tmp_path / "played.mid"
    midi.write(str(path))
    return path


def test_reads_notes_and_pedal(performance_mid: Path) -> None:
    perf = read_performance(performance_mid)
    assert len(perf.notes) == sum(len(i.notes) for i in example_midi().instruments)
    assert [(round(p.onset, 2), round(p.offset, 2)) for p in perf.pedals] == [(1.0, 2.5), (4.0, 4.75)]


def test_damaged_midi_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    with pytest.raises(InputError, match="not a readable MIDI"):
        read_performance(bad)


def test_cli_builds_the_score_from_midi_without_transcribing(performance_mid: Path, tmp_path: Path) -> None:
    proc = run_cli("transcribe", performance_mid, "-o", tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary["timings_s"]) == {"read MIDI", "score", "engrave"}
    assert (summary["time_signature"], summary["key"], summary["pedals"]) == ("3/4", "G major", 2)
    assert (tmp_path / "out" / "played.pdf").read_bytes().startswith(b"%PDF")


def test_refuses_to_overwrite_the_input(performance_mid: Path) -> None:
    before = performance_mid.read_bytes()
    proc = run_cli("transcribe", performance_mid, "-o", performance_mid.parent)
    assert proc.returncode != 0 and "overwrite the input" in proc.stderr
    assert performance_mid.read_bytes() == before


@pytest.mark.parametrize("model", ["learned", "heuristic"])
def test_cli_reads_the_score_with_either_score_model(performance_mid: Path, tmp_path: Path, model: str) -> None:
    proc = run_cli("transcribe", performance_mid, "-o", tmp_path / "out", "--json", "--formats", "mid,musicxml",
                   "--score-model", model)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["time_signature"], summary["key"]) == ("3/4", "G major")
    assert summary["bars"] in (8, 9)  # the minuet's eight bars (a ninth: the last note's release)


def test_an_unknown_score_model_is_one_clear_error(performance_mid: Path, tmp_path: Path) -> None:
    proc = run_cli("transcribe", performance_mid, "-o", tmp_path / "out", "--score-model", "oracle")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
