"""The interface every transcription backend implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from kimiwonosete.notes import Performance

#: Called as ``progress(done, total)`` after each chunk of audio a backend finishes.
ProgressFn = Callable[[int, int], None]


class Transcriber(Protocol):
    """Audio (mono float32 at ``sample_rate``) in, notes and sustain pedal out."""

    name: str
    sample_rate: int

    def settings(self) -> dict[str, object]:
        """Everything that decides its notes (name, version, windows, device, sample rate): part
        of a job's work key, so checkpoints of another model or setting are never re-used."""
        ...

    def transcribe(self, audio: np.ndarray, progress: ProgressFn | None = None) -> Performance: ...
