"""Which staff each note goes on: a split that follows where each hand has been playing."""

from __future__ import annotations

from kimiwonosete.notes import Note

TREBLE, BASS = 0, 1
ALWAYS_TREBLE = 64  # E4 and above
ALWAYS_BASS = 55  # G3 and below
MEMORY = 0.7  # how much of a hand's running centre is kept at each of its notes
MAX_HAND_SPAN = 14  # semitones one hand's chord may span


def assign_staves(notes: list[Note], chord_window_s: float = 0.05) -> list[int]:
    """Staff (``TREBLE`` or ``BASS``) for each note, notes given sorted by onset.

    Notes far from middle C go by pitch; notes near it go to the hand whose recent centre is
    closer. Within a chord, a hand's part never spans more than ``MAX_HAND_SPAN``.

    >>> from kimiwonosete.notes import Note
    >>> assign_staves([Note(0, 1, 48, 80), Note(0, 1, 72, 80), Note(1, 2, 57, 80)])
    [1, 0, 1]
    """
    centre = [67.0, 48.0]
    staff = [TREBLE] * len(notes)
    i = 0
    while i < len(notes):
        j = i
        while j < len(notes) and notes[j].onset - notes[i].onset <= chord_window_s:
            j += 1
        chord = sorted(range(i, j), key=lambda k: notes[k].pitch)
        for k in chord:
            p = notes[k].pitch
            if p >= ALWAYS_TREBLE:
                staff[k] = TREBLE
            elif p <= ALWAYS_BASS:
                staff[k] = BASS
            else:
                staff[k] = TREBLE if abs(p - centre[TREBLE]) <= abs(p - centre[BASS]) else BASS
        _limit_span(notes, chord, staff)
        for k in chord:
            s = staff[k]
            centre[s] = MEMORY * centre[s] + (1 - MEMORY) * notes[k].pitch
        i = j
    return staff


def _limit_span(notes: list[Note], chord: list[int], staff: list[int]) -> None:
    """Move notes between hands so that neither hand stretches past ``MAX_HAND_SPAN``."""
    rh = [k for k in chord if staff[k] == TREBLE]
    while len(rh) > 1 and notes[rh[-1]].pitch - notes[rh[0]].pitch > MAX_HAND_SPAN and notes[rh[0]].pitch < ALWAYS_TREBLE:
        staff[rh.pop(0)] = BASS
    lh = [k for k in chord if staff[k] == BASS]
    while len(lh) > 1 and notes[lh[-1]].pitch - notes[lh[0]].pitch > MAX_HAND_SPAN and notes[lh[-1]].pitch > ALWAYS_BASS:
        staff[lh.pop()] = TREBLE
