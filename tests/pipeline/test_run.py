"""The local driver over the stages: its work folder's lock, MIDI spans, LilyPond's warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pretty_midi
import pytest

from helpers import run_cli
from kimiwonosete.errors import KimiError
from kimiwonosete.examples import example_midi
from kimiwonosete.pipeline import transcribe
from kimiwonosete.pipeline.progress import QuietReporter
from kimiwonosete.pipeline.workfolder import locked
from kimiwonosete.sources.midi import read_performance


class TriesTheLockWhileScoring(QuietReporter):
    """Another run of the same job, trying to take the work folder once the notes are done."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.refused: bool | None = None

    def start(self, stage: str) -> None:
        if stage == "score":
            (lock,) = self.root.glob("*.lock")
            try:
                with locked(lock):
                    self.refused = False
            except KimiError:
                self.refused = True


def test_the_work_folder_stays_locked_until_it_is_removed(example_flac: Path, tmp_path: Path) -> None:
    reporter = TriesTheLockWhileScoring(tmp_path)
    transcribe(example_flac, None, model="basic-pitch", workdir=tmp_path, reporter=reporter)
    assert reporter.refused is True, "another run could take the work folder that this run was about to remove"
    assert not any(tmp_path.iterdir())


@pytest.fixture
def played_mid(tmp_path: Path) -> Path:
    midi = example_midi()
    midi.instruments[0].control_changes += [pretty_midi.ControlChange(64, 127, 1.0), pretty_midi.ControlChange(64, 0, 6.0)]
    path = tmp_path / "played.mid"
    midi.write(str(path))
    return path


def test_start_and_end_cut_a_midi_performance(played_mid: Path, tmp_path: Path) -> None:
    whole = read_performance(played_mid)
    proc = run_cli("transcribe", played_mid, "-o", tmp_path / "out", "--start", "2", "--end", "0:08",
                   "--formats", "performance", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    inside = [n for n in whole.notes if n.onset < 8.0 and n.offset > 2.0]
    assert summary["duration_s"] == 6.0 and summary["notes"] == len(inside) < len(whole.notes)
    cut = read_performance(tmp_path / "out" / "played.performance.mid")
    assert min(n.onset for n in cut.notes) >= 0.0 and max(n.offset for n in cut.notes) <= 6.0 + 1e-6
    assert [(round(p.onset, 3), round(p.offset, 3)) for p in cut.pedals] == [(0.0, 4.0)]
    assert sorted(n.pitch for n in cut.notes) == sorted(n.pitch for n in inside)


def test_a_midi_span_after_its_end_is_one_clear_error(played_mid: Path, tmp_path: Path) -> None:
    proc = run_cli("transcribe", played_mid, "-o", tmp_path / "out", "--start", "5:00")
    assert proc.returncode == 1 and "before the part asked for" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not any((tmp_path / "out").iterdir())
