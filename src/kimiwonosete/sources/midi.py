"""A MIDI performance as input: notes and sustain pedal, no transcription needed."""

from __future__ import annotations

from pathlib import Path

from kimiwonosete.errors import InputError
from kimiwonosete.notes import SUSTAIN_CC, Note, Pedal, Performance

MIDI_SUFFIXES = (".mid", ".midi")
PEDAL_DOWN = 64  # CC 64 values at or above this hold the pedal


def is_midi(path: Path) -> bool:
    return path.suffix.lower() in MIDI_SUFFIXES


def read_performance(path: str | Path) -> Performance:
    """Every pitched note of every track, and sustain-pedal intervals from CC 64.

    >>> read_performance("performance.mid").notes[:1]  # doctest: +SKIP
    [Note(onset=0.52, offset=1.37, pitch=62, velocity=74)]
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido raises many kinds of errors for a damaged file
        raise InputError(f"{path}: not a readable MIDI file ({exc})") from None
    notes = [
        Note(n.start, n.end, n.pitch, n.velocity)
        for inst in midi.instruments if not inst.is_drum for n in inst.notes if n.end > n.start
    ]
    pedals: list[Pedal] = []
    for inst in midi.instruments:
        down: float | None = None
        for cc in sorted((c for c in inst.control_changes if c.number == SUSTAIN_CC), key=lambda c: c.time):
            if cc.value >= PEDAL_DOWN and down is None:
                down = cc.time
            elif cc.value < PEDAL_DOWN and down is not None:
                pedals.append(Pedal(down, cc.time))
                down = None
        if down is not None:  # still held when the file ends
            pedals.append(Pedal(down, midi.get_end_time()))
    return Performance(notes, pedals, duration=midi.get_end_time())
