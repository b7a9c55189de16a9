"""The score data model: what is written, in ticks of a quarter note, per staff.

One tick grid serves 16ths and 8th-note triplets: ``TICKS_PER_QUARTER = 12`` (16th = 3,
triplet 8th = 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kimiwonosete.serial import check_version, from_plain, to_plain, versioned

TICKS_PER_QUARTER = 12
STEPS = "CDEFGAB"
#: Bump when a change to these classes changes what ``Score.to_dict`` means.
SCORE_LAYOUT = 1


@dataclass(frozen=True, slots=True)
class TimeSignature:
    numerator: int
    denominator: int

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8 (and 6/4): beats are dotted; 3/8 counts three eighths.

        >>> TimeSignature(6, 8).beats_per_bar, TimeSignature(3, 8).beats_per_bar, TimeSignature(6, 4).beat_ticks
        (2, 3, 36)
        """
        return self.numerator % 3 == 0 and self.numerator > 3

    @property
    def bar_ticks(self) -> int:
        return self.numerator * 4 * TICKS_PER_QUARTER // self.denominator

    @property
    def beat_ticks(self) -> int:
        unit = 4 * TICKS_PER_QUARTER // self.denominator
        return 3 * unit if self.compound else unit

    @property
    def beats_per_bar(self) -> int:
        return self.bar_ticks // self.beat_ticks

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True, slots=True)
class KeySignature:
    """``fifths``: sharps (>0) or flats (<0) in the signature."""

    fifths: int
    mode: str = "major"

    @property
    def tonic(self) -> str:
        """The tonic's name, e.g. ``"F#"`` or ``"Bb"``."""
        return note_name(*on_line_of_fifths(self.fifths + (0 if self.mode == "major" else 3)))

    def __str__(self) -> str:
        return f"{self.tonic} {self.mode}"


def note_name(step: str, alter: int) -> str:
    """A spelled pitch class as text.

    >>> note_name("F", 1), note_name("B", -2)
    ('F#', 'Bbb')
    """
    return step + ("#" * alter if alter > 0 else "b" * -alter)


def on_line_of_fifths(pos: int) -> tuple[str, int]:
    """Step and alteration of the pitch class at ``pos`` on the line of fifths (C = 0, G = 1, F = -1).

    >>> on_line_of_fifths(6), on_line_of_fifths(-2)
    (('F', 1), ('B', -1))
    """
    return "FCGDAEB"[(pos + 1) % 7], (pos + 1) // 7


@dataclass(frozen=True, slots=True)
class Pitch:
    """A spelled pitch: ``step`` C..B, ``alter`` in semitones, scientific ``octave`` (C4 = 60)."""

    midi: int
    step: str
    alter: int
    octave: int


@dataclass(slots=True)
class Event:
    """A chord (or a rest when ``pitches`` is empty) starting at ``start`` ticks, lasting
    ``duration``; ``grace``: grace notes played just before it, in order."""

    start: int
    duration: int
    pitches: tuple[Pitch, ...] = ()
    velocity: int = 0
    grace: tuple[Pitch, ...] = ()

    @property
    def end(self) -> int:
        return self.start + self.duration

    @property
    def is_rest(self) -> bool:
        return not self.pitches


@dataclass(slots=True)
class Staff:
    """One staff: one voice, or two where lines overlap (``events`` the upper voice, stems up;
    ``second`` the lower, stems down). A voice's events are in time order, cover the score
    without overlap, and are rests wherever it is silent."""

    clef: str  # "treble" | "bass"
    events: list[Event]
    second: list[Event] = field(default_factory=list)

    @property
    def voices(self) -> list[list[Event]]:
        return [self.events, self.second] if self.second else [self.events]


@dataclass(slots=True)
class Score:
    """A two-staff piano score built from a performance."""

    title: str
    time_signature: TimeSignature
    key: KeySignature
    tempo: float  # quarter notes per minute
    n_bars: int
    staves: list[Staff]
    #: When each notated beat was played (s), from bar 1 beat 1 to the end of the last bar.
    beat_times: tuple[float, ...] = ()
    #: (bar index, quarter notes per minute) where a tempo mark goes; empty: ``tempo`` at bar 1.
    tempo_marks: tuple[tuple[int, int], ...] = ()
    #: Ticks at the start of bar 1 left unwritten: bar 1 is an anacrusis (pickup) from here.
    pickup: int = 0
    #: Sustain pedal (down, up) in ticks, marked under the lower staff.
    pedal: tuple[tuple[int, int], ...] = ()
    #: Dynamics (tick, mark such as ``"mf"``), marked under the upper staff.
    dynamics: tuple[tuple[int, str], ...] = ()
    #: Key signature changes after the first: (bar index, key).
    key_changes: tuple[tuple[int, KeySignature], ...] = ()
    #: Where the recording came from, for a link: who put it online, and its address (untrusted).
    uploader: str = ""
    url: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and versioned: :meth:`from_dict` gives back an equal score."""
        return versioned("score", SCORE_LAYOUT, to_plain(self))

    @classmethod
    def from_dict(cls, data: Any) -> Score:
        """The score :meth:`to_dict` wrote; a ValueError for anything else."""
        return from_plain(cls, check_version(data, "score", SCORE_LAYOUT))

    @property
    def marks(self) -> tuple[tuple[int, int], ...]:
        """The tempo marks to engrave: at least one, at the first bar."""
        return self.tempo_marks or ((0, max(1, round(self.tempo))),)

    @property
    def total_ticks(self) -> int:
        return self.n_bars * self.time_signature.bar_ticks

    @property
    def downbeat_times(self) -> tuple[float, ...]:
        return self.beat_times[:: self.time_signature.beats_per_bar]

    @property
    def note_count(self) -> int:
        return sum(len(e.pitches) for s in self.staves for v in s.voices for e in v)
