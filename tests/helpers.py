"""Helpers the tests share: a CLI runner and the note metric."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kimiwonosete.notes import Note


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kimiwonosete ARGS`` as a user would, stdin closed, output captured."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "kimiwonosete", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
    )


def onset_f1(reference: list[Note], estimate: list[Note]) -> float:
    import mir_eval

    def arrays(notes: list[Note]) -> tuple[np.ndarray, np.ndarray]:
        iv = np.array([[n.onset, n.offset] for n in notes]).reshape(-1, 2)
        return iv, mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=float))

    (ri, rp), (ei, ep) = arrays(reference), arrays(estimate)
    return mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]


def short_marker() -> Path:
    """A file path short enough that a title holding it fits on one engraved line."""
    return Path(tempfile.mkdtemp(prefix="kw")) / "PWNED"
