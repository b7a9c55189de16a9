"""Both backends on the example recording, against the notes it was rendered from."""

from __future__ import annotations

from pathlib import Path

import mir_eval
import numpy as np
import pytest

from helpers import onset_f1
from kimiwonosete.audio import decode
from kimiwonosete.errors import KimiError
from kimiwonosete.notes import Note, Performance
from kimiwonosete.transcription import get_transcriber
from kimiwonosete.transcription.transkun import load_stock_model


@pytest.fixture(scope="module")
def transkun_notes(example_flac: Path) -> Performance:
    t = get_transcriber("transkun", "cpu")  # compared below with stock Transkun on the CPU
    return t.transcribe(decode(example_flac, t.sample_rate))


def test_transkun_finds_the_notes_and_little_pedal(transkun_notes: Performance,
                                                                  example_notes: list[Note]) -> None:
    assert onset_f1(example_notes, transkun_notes.notes) >= 0.95
    # The example is played without pedal; the model may hear a brief one in FluidSynth's reverb.
    assert sum(p.offset - p.onset for p in transkun_notes.pedals) < 1.0
    assert all(1 <= n.velocity <= 127 and n.offset > n.onset for n in transkun_notes.notes)


@pytest.mark.filterwarnings("ignore::UserWarning")  # stock's gradient checkpointing warns at inference
def test_transkun_matches_stock_transkun(example_flac: Path, transkun_notes: Performance) -> None:
    """Our backend against Transkun run exactly as its own command line does."""
    import torch

    with torch.no_grad():
        audio = torch.from_numpy(decode(example_flac, 44100).copy())[:, None]
        stock = [Note(e.start, e.end, e.pitch, 1) for e in load_stock_model("cpu").transcribe(audio) if e.pitch > 0]
    assert onset_f1(stock, transkun_notes.notes) >= 0.995
    ref = np.array([[n.onset, n.offset] for n in stock])
    est = np.array([[n.onset, n.offset] for n in transkun_notes.notes])
    # Matched with pitch as well as onset: every matched note has the identical pitch.
    pitch_pairs = mir_eval.transcription.match_notes(
        ref, mir_eval.util.midi_to_hz(np.array([n.pitch for n in stock], float)),
        est, mir_eval.util.midi_to_hz(np.array([n.pitch for n in transkun_notes.notes], float)),
        onset_tolerance=0.05, offset_ratio=None)
    assert len(pitch_pairs) >= 0.995 * max(len(stock), len(transkun_notes.notes))


def test_basic_pitch_is_a_usable_draft(example_flac: Path, example_notes: list[Note]) -> None:
    t = get_transcriber("basic-pitch")
    perf = t.transcribe(decode(example_flac, t.sample_rate))
    assert onset_f1(example_notes, perf.notes) >= 0.8
    assert perf.pedals == []


def test_devices_are_checked() -> None:
    import torch

    with pytest.raises(KimiError, match="unknown device"):
        get_transcriber("transkun", "tpu")
    with pytest.raises(KimiError, match="CPU only"):
        get_transcriber("basic-pitch", "cuda")
    if torch.cuda.is_available():
        assert get_transcriber("transkun", "auto").device == "cuda"
    else:
        assert get_transcriber("transkun", "auto").device == "cpu"
        with pytest.raises(KimiError, match="no CUDA GPU"):
            get_transcriber("transkun", "cuda")


def test_transkun_serves_threads_at_once(example_flac: Path, transkun_notes: Performance) -> None:
    """Two threads transcribing at the same time with the one shared model: each counts its own
    windows and gets the notes it would get alone (a service runs stages in threads)."""
    import threading

    t = get_transcriber("transkun", "cpu")
    audio = decode(example_flac, t.sample_rate)
    together = threading.Barrier(2, timeout=300)  # both calls are inside the model at once
    progress: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    results: dict[int, Performance] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        def seen(done: int, total: int) -> None:
            progress[i].append((done, total))
            if done == 1:
                together.wait()

        try:
            results[i] = t.transcribe(audio, seen)
        except BaseException as exc:  # noqa: BLE001  (reported below, with the thread's own error)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert progress[0] == progress[1] == [(1, 2), (2, 2)]
    assert results[0].notes == results[1].notes == transkun_notes.notes
