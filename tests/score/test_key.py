"""The piece's key: profiles weighed against the final bass by the packaged weights."""

from __future__ import annotations

import numpy as np
import pytest

from kimiwonosete.notes import Note
from kimiwonosete.score.key import FINAL_S, KEYS, KeySignature, estimate_key, key_inputs, named_like

# A tune on C D E G A B only: it fits C major and G major alike (no F, no F#).
TUNE = [60, 62, 64, 67, 69, 71, 72, 71, 69, 67, 64, 62] * 3


def _ending_on(bass: int) -> list[Note]:
    end = 0.3 * len(TUNE)
    tune = [Note(0.3 * i, 0.3 * i + 0.3, p, 80) for i, p in enumerate(TUNE)]
    return tune + [Note(end, end + 1.0, bass, 80), Note(end, end + 1.0, 67, 80)]


@pytest.mark.parametrize(("bass", "key"), [(48, KeySignature(0, "major")), (55, KeySignature(1, "major"))])
def test_the_final_bass_decides_between_keys_the_tune_fits_alike(bass, key) -> None:
    notes = _ending_on(bass)
    inputs = key_inputs(np.array([n.onset for n in notes]), np.array([n.offset for n in notes]),
                        np.array([n.pitch for n in notes]))
    assert KEYS[int(np.argmax(inputs[:, 0]))] == KeySignature(1, "major")  # the profiles alone
    assert estimate_key(notes) == key


def test_only_the_last_notes_count_as_the_final_bass() -> None:
    notes = _ending_on(48)
    late = notes[-1].onset + FINAL_S + 0.5
    notes.append(Note(late, late + 0.5, 79, 80))  # a high G alone, after the C in the bass
    inputs = key_inputs(np.array([n.onset for n in notes]), np.array([n.offset for n in notes]),
                        np.array([n.pitch for n in notes]))
    g_major = KEYS.index(KeySignature(1, "major"))
    assert inputs[g_major, 1:].argmax() == 0  # the final bass is now the G: G major's tonic


def test_six_accidental_keys_take_the_pieces_accidentals() -> None:
    f_sharp, e_flat_minor = KeySignature(6, "major"), KeySignature(-6, "minor")
    local = [f_sharp, e_flat_minor, KeySignature(2)]
    assert named_like(local, KeySignature(-3)) == [KeySignature(-6, "major"), e_flat_minor, KeySignature(2)]
    assert named_like(local, KeySignature(4)) == [f_sharp, KeySignature(6, "minor"), KeySignature(2)]
    assert named_like(local, KeySignature(0)) == local  # C major: no side to take
