"""Score MIDI: the notated rhythm in ticks, the performance's timing in the tempo map."""

from __future__ import annotations

import io

import mido
import numpy as np
import pretty_midi

from kimiwonosete.engrave.midi import MIDI_PPQ, score_midi
from kimiwonosete.score.model import TICKS_PER_QUARTER, Event, KeySignature, Pitch, Score, Staff, TimeSignature

TS = TimeSignature(3, 4)
C4, E4, C3 = Pitch(60, "C", 0, 4), Pitch(64, "E", 0, 4), Pitch(48, "C", 0, 3)
Q = TICKS_PER_QUARTER


def _score(beat_times: tuple[float, ...]) -> Score:
    # Two bars of quarters, the second bar's first note repeated (same pitch, adjacent).
    treble = [Event(i * Q, Q, (C4 if i % 2 else E4,), 70) for i in range(6)]
    treble[3] = Event(3 * Q, Q, (C4,), 70)
    treble[4] = Event(4 * Q, Q, (C4,), 70)
    bass = [Event(0, 3 * Q, (C3,), 60), Event(3 * Q, 3 * Q)]
    return Score("t", TS, KeySignature(-3, "minor"), 60.0, 2,
                 [Staff("treble", treble), Staff("bass", bass)], beat_times)


def test_notes_sit_on_the_grid_and_play_at_the_performed_times() -> None:
    # A ritardando: beats 0.5 s apart, then 0.6, 0.7, ...
    beat_times = tuple(float(t) for t in np.cumsum([1.0, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9]))
    data = score_midi(_score(beat_times))
    raw = mido.MidiFile(file=io.BytesIO(data))
    assert raw.ticks_per_beat == MIDI_PPQ
    metas = [m for m in raw.tracks[0] if m.is_meta]
    assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (3, 4) for m in metas)
    assert any(m.type == "key_signature" and m.key == "Cm" for m in metas)
    ticks = []
    for track in raw.tracks[1:]:
        now = 0
        for m in track:
            now += m.time
            if m.type == "note_on":
                ticks.append(now)
    assert sorted(set(ticks)) == [i * MIDI_PPQ for i in range(6)]
    # Played back, the k-th beat sounds k beats after the first one as performed.
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    starts = sorted({round(n.start, 3) for inst in pm.instruments for n in inst.notes})
    np.testing.assert_allclose(starts, np.array(beat_times[:6]) - beat_times[0], atol=1e-3)
    # The repeated C4 stays two notes.
    assert sum(n.pitch == 60 for n in pm.instruments[0].notes) == 4
