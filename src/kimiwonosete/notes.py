"""The transcription data model: notes and pedal intervals with real (performed) timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kimiwonosete.serial import check_version, from_plain, to_plain, versioned

SUSTAIN_CC = 64  # the MIDI controller of the sustain pedal
#: Bump when a change to these classes changes what their ``to_dict`` means.
PERFORMANCE_LAYOUT = 1


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and versioned: :meth:`from_dict` gives back an equal performance.

        >>> played = Performance([Note(0.5, 1.0, 60, 80)], [Pedal(0.0, 2.0)], 3.0)
        >>> Performance.from_dict(played.to_dict()) == played
        True
        """
        return versioned("performance", PERFORMANCE_LAYOUT, to_plain(self))

    @classmethod
    def from_dict(cls, data: Any) -> Performance:
        """The performance :meth:`to_dict` wrote; a ValueError for anything else."""
        return from_plain(cls, check_version(data, "performance", PERFORMANCE_LAYOUT))

    def span(self, start: float = 0.0, end: float | None = None) -> Performance:
        """Seconds ``start`` to ``end`` (default: to the end) of the performance, moved to start at
        0: notes and pedal presses that sound there, cut at both ends.

        >>> part = Performance([Note(0.5, 2.0, 60, 80), Note(3.0, 4.0, 62, 80)], [Pedal(0.0, 5.0)], 6.0).span(1.0, 3.5)
        >>> [(n.onset, n.offset) for n in part.notes], part.pedals, part.duration
        ([(0.0, 1.0), (2.0, 2.5)], [Pedal(onset=0.0, offset=2.5)], 2.5)
        """
        stop = self.duration if end is None else min(end, self.duration)
        if start <= 0 and stop >= self.duration:
            return self
        notes = [Note(max(n.onset, start) - start, min(n.offset, stop) - start, n.pitch, n.velocity)
                 for n in self.notes if n.onset < stop and n.offset > start]
        pedals = [Pedal(max(p.onset, start) - start, min(p.offset, stop) - start)
                  for p in self.pedals if p.onset < stop and p.offset > start]
        return Performance(notes, pedals, duration=max(0.0, stop - start))

    def intervals(self) -> np.ndarray:
        """Note (onset, offset) pairs as an ``(n, 2)`` array, in seconds."""
        return np.array([[n.onset, n.offset] for n in self.notes], dtype=float).reshape(-1, 2)

    def pitches(self) -> np.ndarray:
        return np.array([n.pitch for n in self.notes], dtype=int)
