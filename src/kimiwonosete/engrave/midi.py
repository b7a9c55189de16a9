"""MIDI files: the performance (real timing, velocities, sustain pedal) and the quantized score."""

from __future__ import annotations

import io

import pretty_midi

from kimiwonosete.notes import SUSTAIN_CC, Performance
from kimiwonosete.score.model import TICKS_PER_QUARTER, Score

PIANO_PROGRAM = 0


def _to_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    buf = io.BytesIO()
    midi.write(buf)
    return buf.getvalue()


def performance_midi(performance: Performance) -> bytes:
    """The transcription as played: one piano track with notes and sustain pedal (CC 64)."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=PIANO_PROGRAM, name="Piano")
    for n in performance.notes:
        piano.notes.append(pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.onset, end=n.offset))
    for p in performance.pedals:
        piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CC, 127, p.onset))
        piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CC, 0, p.offset))
    midi.instruments.append(piano)
    return _to_bytes(midi)


def score_midi(score: Score) -> bytes:
    """The score as MIDI at its tempo: one track per staff, notes exactly on the grid."""
    seconds_per_tick = 60.0 / score.tempo / TICKS_PER_QUARTER
    midi = pretty_midi.PrettyMIDI(initial_tempo=score.tempo)
    ts = score.time_signature
    midi.time_signature_changes.append(pretty_midi.TimeSignature(ts.numerator, ts.denominator, 0.0))
    key_number = pretty_midi.key_name_to_key_number(f"{score.key.tonic} {score.key.mode}")
    midi.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    for staff, name in zip(score.staves, ("Right hand", "Left hand")):
        track = pretty_midi.Instrument(program=PIANO_PROGRAM, name=name)
        for e in staff.events:
            for p in e.pitches:
                track.notes.append(pretty_midi.Note(
                    velocity=e.velocity, pitch=p.midi,
                    start=e.start * seconds_per_tick, end=e.end * seconds_per_tick,
                ))
        midi.instruments.append(track)
    return _to_bytes(midi)
