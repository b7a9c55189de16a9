"""The transcription data model: notes and pedal intervals with real (performed) timing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUSTAIN_CC = 64  # the MIDI controller of the sustain pedal


@dataclass(frozen=True, slots=True)
class Note:
    """One played note: onset and offset in seconds, MIDI pitch, MIDI velocity (1-127)."""

    onset: float
    offset: float
    pitch: int
    velocity: int


@dataclass(frozen=True, slots=True)
class Pedal:
    """A sustain-pedal interval in seconds (pedal down at ``onset``, up at ``offset``)."""

    onset: float
    offset: float


@dataclass(slots=True)
class Performance:
    """What a transcription backend returns: notes sorted by onset, sustain pedal, duration."""

    notes: list[Note]
    pedals: list[Pedal] = field(default_factory=list)
    duration: float = 0.0

    def __post_init__(self) -> None:
        self.notes.sort(key=lambda n: (n.onset, n.pitch))
        self.pedals.sort(key=lambda p: p.onset)

    def intervals(self) -> np.ndarray:
        """Note (onset, offset) pairs as an ``(n, 2)`` array, in seconds."""
        return np.array([[n.onset, n.offset] for n in self.notes], dtype=float).reshape(-1, 2)

    def pitches(self) -> np.ndarray:
        return np.array([n.pitch for n in self.notes], dtype=int)
