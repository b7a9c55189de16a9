"""End to end through the command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pretty_midi
import pytest

from helpers import onset_f1, run_cli, short_marker
from kimiwonosete.audio import ffmpeg_exe
from kimiwonosete.notes import Note

ALL_SUFFIXES = (".pdf", ".ly", ".musicxml", ".mid", ".performance.mid")


@pytest.fixture(scope="module")
def transkun_run(example_flac: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out")
    proc = run_cli("transcribe", example_flac, "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "UserWarning" not in proc.stderr, proc.stderr  # warnings a user would see (DeprecationWarnings are hidden)
    return out, json.loads(proc.stdout)


def test_writes_all_five_files(transkun_run: tuple[Path, dict]) -> None:
    out, summary = transkun_run
    for suffix in ALL_SUFFIXES:
        path = out / f"minuet{suffix}"
        assert path.stat().st_size > 0
        assert summary["artifacts"][{".pdf": "pdf", ".ly": "ly", ".musicxml": "musicxml", ".mid": "mid",
                                     ".performance.mid": "performance"}[suffix]] == str(path)
    assert not list(out.glob(".*part"))
    assert (out / "minuet.pdf").read_bytes().startswith(b"%PDF")


def test_summary_describes_the_minuet(transkun_run: tuple[Path, dict]) -> None:
    _, summary = transkun_run
    assert summary["time_signature"] == "3/4"
    assert summary["key"] == "G major"
    assert 100 <= summary["tempo_qpm"] <= 125
    assert set(summary["timings_s"]) == {"decode", "transcribe", "score", "engrave"}


def test_performance_midi_matches_what_was_played(transkun_run: tuple[Path, dict], example_notes: list[Note]) -> None:
    out, _ = transkun_run
    midi = pretty_midi.PrettyMIDI(str(out / "minuet.performance.mid"))
    played = [Note(n.start, n.end, n.pitch, n.velocity) for n in midi.instruments[0].notes]
    assert onset_f1(example_notes, played) >= 0.9


def test_score_midi_and_musicxml_hold_every_note(transkun_run: tuple[Path, dict], example_notes: list[Note]) -> None:
    out, _ = transkun_run
    score_notes = sum(len(i.notes) for i in pretty_midi.PrettyMIDI(str(out / "minuet.mid")).instruments)
    assert abs(score_notes - len(example_notes)) <= 3
    root = ET.parse(out / "minuet.musicxml").getroot()
    pitched = [n for n in root.iter("note") if n.find("pitch") is not None and n.find("tie[@type='stop']") is None]
    assert abs(len(pitched) - len(example_notes)) <= 3


def test_basic_pitch_backend_end_to_end(example_flac: Path, tmp_path: Path) -> None:
    proc = run_cli("transcribe", example_flac, "-o", tmp_path, "--model", "basic-pitch", "--formats", "ly,performance", "-q")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minuet.ly", "minuet.performance.mid"]


def test_example_command_writes_a_recording(tmp_path: Path) -> None:
    proc = run_cli("example", tmp_path / "sub" / "ex.mp3")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "sub" / "ex.mp3").stat().st_size > 10_000


def _silence(tmp: Path) -> Path:
    path = tmp / "silence.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "3", str(path)],
                   check=True)
    return path


def test_silence_gives_one_empty_bar_and_a_warning(tmp_path: Path) -> None:
    proc = run_cli("transcribe", _silence(tmp_path), "-o", tmp_path / "out", "--model", "basic-pitch")
    assert proc.returncode == 0, proc.stderr
    assert "warning: no notes" in proc.stderr
    assert "R1*4/4" in (tmp_path / "out" / "silence.ly").read_text()
    assert (tmp_path / "out" / "silence.pdf").read_bytes().startswith(b"%PDF")


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "text.mp3").write_text("this is not audio\n" * 100)
    wav = _silence(tmp).read_bytes()
    (tmp / "truncated.wav").write_bytes(wav[:40])
    return {
        "no such file": tmp / "missing.flac",
        "empty": tmp / "empty.wav",
        "cannot decode": tmp / "text.mp3",
        "truncated": tmp / "truncated.wav",
    }


@pytest.mark.parametrize("case", ["no such file", "empty", "cannot decode", "truncated"])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(case: str, tmp_path: Path) -> None:
    path = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    proc = run_cli("transcribe", path, "-o", out, "--model", "basic-pitch")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kimiwonosete: error:"), proc.stderr
    if case != "truncated":
        assert case in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_output_folder(example_flac: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_cli("transcribe", example_flac, "-o", blocker / "out", "--model", "basic-pitch")
    assert proc.returncode != 0
    assert proc.stderr.startswith("kimiwonosete: error:") and "cannot write" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_format_is_refused(example_flac: Path, tmp_path: Path) -> None:
    proc = run_cli("transcribe", example_flac, "-o", tmp_path, "--formats", "pdf,docx")
    assert proc.returncode != 0 and "unknown format docx" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_hostile_title_from_the_command_line_is_printed_not_run(example_flac: Path, tmp_path: Path) -> None:
    marker = short_marker()
    title = f'"#(system "touch {marker}")'
    proc = run_cli("transcribe", example_flac, "-o", tmp_path / "out", "--model", "basic-pitch",
                   "--formats", "pdf,ly", "--title", title, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    text = subprocess.run(["pdftotext", str(tmp_path / "out" / "minuet.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert title in text
