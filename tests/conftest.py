"""Shared fixtures: the example recording (made by FluidSynth) and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kimiwonosete.examples import example_midi, write_example
from kimiwonosete.notes import Note


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kimiwonosete ARGS`` as a user would, stdin closed, output captured."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "kimiwonosete", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def example_flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example") / "minuet.flac")


@pytest.fixture(scope="session")
def example_notes() -> list[Note]:
    """The notes the example recording was rendered from (its ground truth)."""
    midi = example_midi()
    return sorted(
        (Note(n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes),
        key=lambda n: (n.onset, n.pitch),
    )


def onset_f1(reference: list[Note], estimate: list[Note]) -> float:
    import mir_eval

    def arrays(notes: list[Note]) -> tuple[np.ndarray, np.ndarray]:
        iv = np.array([[n.onset, n.offset] for n in notes]).reshape(-1, 2)
        return iv, mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=float))

    (ri, rp), (ei, ep) = arrays(reference), arrays(estimate)
    return mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]
