"""What a job makes for its page (:mod:`kimiwonosete.service.pageview`), on a real store with
real tools: a part that fails is named and the others are made all the same."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from kimiwonosete.examples import example_midi
from kimiwonosete.pipeline.store import Store
from kimiwonosete.service import pageview

JOB = "j1"


def test_a_sheet_that_cannot_be_made_leaves_the_audio_made(example_flac: Path, tmp_path: Path) -> None:
    pytest.importorskip("verovio")
    store = Store(str(tmp_path / "store"))
    midi = io.BytesIO()
    example_midi().write(midi)
    store.put(f"jobs/{JOB}/input/upload.bin", example_flac.read_bytes())
    store.put(f"jobs/{JOB}/artifacts/piece.mid", midi.getvalue())
    store.put(f"jobs/{JOB}/artifacts/piece.musicxml", b"this is not MusicXML")
    artifacts = {"musicxml": "piece.musicxml", "mid": "piece.mid"}
    failures = pageview.prepare(store, JOB, artifacts, {"start": 2.0, "end": 6.0}, threading.Lock())
    assert sorted(failures) == ["narrow sheet: verovio could not read the MusicXML",
                                "wide sheet: verovio could not read the MusicXML"]
    assert store.size(f"jobs/{JOB}/view/recording.opus") and store.size(f"jobs/{JOB}/view/score.opus")
    assert not store.keys(f"jobs/{JOB}/view/sheet-")
