"""MIDI files: the performance (real timing, velocities, sustain pedal) and the quantized score."""

from __future__ import annotations

import io

import mido
import pretty_midi

from kimiwonosete.notes import SUSTAIN_CC, Performance
from kimiwonosete.score.model import TICKS_PER_QUARTER, KeySignature, Score

PIANO_PROGRAM = 0
MIDI_PPQ = 480  # ticks per quarter in the written file; a multiple of TICKS_PER_QUARTER


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
    """The score as MIDI: one track per staff, notes exactly on the grid, and a tempo change at
    every beat so that it plays back with the performance's timing (its tempo map).

    Written with mido: pretty_midi places notes in seconds and has no public way to add tempo
    changes, and here the ticks (the notated rhythm) are what must be exact.
    """
    scale = MIDI_PPQ // TICKS_PER_QUARTER
    ts = score.time_signature
    conductor = mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator, time=0),
        mido.MetaMessage("key_signature", key=_mido_key(score.key), time=0),
    ])
    beat_quarters = ts.beat_ticks / TICKS_PER_QUARTER
    tempo_events = [(i * ts.beat_ticks * scale, _tempo((b - a) / beat_quarters))
                     for i, (a, b) in enumerate(zip(score.beat_times, score.beat_times[1:])) if b > a]
    if not tempo_events or tempo_events[0][0] > 0:  # no played first beat: the overall tempo
        tempo_events.insert(0, (0, _tempo(60.0 / score.tempo)))
    keys = [(bar * ts.bar_ticks * scale, mido.MetaMessage("key_signature", key=_mido_key(k))) for bar, k in score.key_changes]
    conductor += _delta_times(sorted([(t, mido.MetaMessage("set_tempo", tempo=v)) for t, v in tempo_events] + keys,
                                     key=lambda te: te[0]))
    tracks = [conductor]
    for staff, name in zip(score.staves, ("Right hand", "Left hand")):
        events = []
        if name == "Left hand":
            for down, up in score.pedal:
                events.append((down * scale, mido.Message("control_change", control=SUSTAIN_CC, value=127)))
                events.append((up * scale, mido.Message("control_change", control=SUSTAIN_CC, value=0)))
        for e in (e for voice in staff.voices for e in voice):
            for p in e.pitches:
                events.append((e.start * scale, mido.Message("note_on", note=p.midi, velocity=e.velocity)))
                events.append((e.end * scale, mido.Message("note_off", note=p.midi, velocity=0)))
        # At equal ticks a note ends before the next one starts (repeated notes stay separate),
        # and a pedal is released before it is pressed again.
        events.sort(key=lambda te: (te[0], te[1].type == "note_on", getattr(te[1], "value", 0) > 0))
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                                mido.Message("program_change", program=PIANO_PROGRAM, time=0)])
        tracks.append(track + _delta_times(events))
    midi = mido.MidiFile(type=1, ticks_per_beat=MIDI_PPQ)
    midi.tracks.extend(tracks)
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def _tempo(seconds_per_quarter: float) -> int:
    return int(round(min(max(seconds_per_quarter, 0.05), 16.0) * 1e6))


def _mido_key(key: KeySignature) -> str:
    return key.tonic + ("m" if key.mode == "minor" else "")


def _delta_times(events: list[tuple[int, "mido.Message | mido.MetaMessage"]]) -> list:
    """Absolute-tick events (already in order) as mido messages with delta times."""
    out, last = [], 0
    for tick, msg in events:
        out.append(msg.copy(time=int(tick) - last))
        last = int(tick)
    return out
