"""Which staff each note goes on: a split point between the hands that follows the music.

At every onset (notes starting together form one chord) the hands are separated by a split
pitch: notes at or above it go to the upper staff, the rest to the lower one. The split is
chosen for the whole piece at once (Viterbi over split pitches) so that neither hand stretches
past a hand's span, each hand stays in its register, and the split moves little from chord to
chord: a melody that dips into the middle stays in the right hand, and a bass line that climbs
stays in the left, instead of each note going by a fixed middle C.
"""

from __future__ import annotations

import numpy as np

from kimiwonosete.notes import Note

TREBLE, BASS = 0, 1
CHORD_WINDOW_S = 0.05  # notes starting within this of a chord's first note belong to it
SPLITS = np.arange(21, 110)  # the lowest pitch the right hand plays (109: all in the left hand)
HAND_SPAN = 14  # semitones one hand covers comfortably (a ninth, and a tone to spare)
SPAN_COST = 2.0  # per semitone a hand's chord stretches past ``HAND_SPAN``
RIGHT_FLOOR, LEFT_CEILING = 60, 64  # a right-hand note below C4 / left-hand note above E4 is unusual
REGISTER_COST = 0.15  # per semitone past those
MOVE_COST = 0.06  # per semitone the split moves between consecutive chords
MIDDLE_WINDOW_S = 1.5  # the texture's middle: the median pitch of notes within this of a chord
MAX_WEIGHT_S = 1.0  # ... each note weighted by how long it is held, up to this
MIDDLE_COST = 1.5  # per octave the split is away from the middle
#: a lower-staff note at E5 or above (five ledger lines over the bass clef) among lower-staff
#: notes around C4 or below (within STRAY_WINDOW_S) is written on the upper staff. On every 3rd
#: ASAP performance the staff head does that to 14 notes (6 of them upper in the score: staff
#: accuracy unchanged, 0.8962); on a stride recording it put the right hand's top notes under
#: the bass chords, seven ledger lines up.
STRAY_FROM, STRAY_MIDDLE, STRAY_WINDOW_S = 76, 60, 1.0


def _chords(notes: list[Note], window_s: float) -> list[np.ndarray]:
    """Indices of notes starting together (notes given sorted by onset)."""
    out, i = [], 0
    while i < len(notes):
        j = i
        while j < len(notes) and notes[j].onset - notes[i].onset <= window_s:
            j += 1
        out.append(np.arange(i, j))
        i = j
    return out


def local_middles(notes: list[Note], chords: list[np.ndarray]) -> np.ndarray:
    """For each chord, the held-time-weighted median pitch of the notes played around it."""
    onsets = np.array([n.onset for n in notes])
    pitches = np.array([n.pitch for n in notes])
    weights = np.array([min(n.offset - n.onset, MAX_WEIGHT_S) for n in notes]) + 1e-3
    out = np.empty(len(chords))
    for k, chord in enumerate(chords):
        t = onsets[chord[0]]
        lo, hi = np.searchsorted(onsets, [t - MIDDLE_WINDOW_S, t + MIDDLE_WINDOW_S])
        order = np.argsort(pitches[lo:hi])
        cum = np.cumsum(weights[lo:hi][order])
        out[k] = pitches[lo:hi][order][np.searchsorted(cum, cum[-1] / 2)]
    return out


def split_costs(pitches: np.ndarray, middle: float | None = None) -> np.ndarray:
    """Cost of each split in ``SPLITS`` for one chord's pitches.

    >>> costs = split_costs(np.array([43, 55, 72, 76]))
    >>> int(SPLITS[np.argmin(costs)]) in range(56, 73)
    True
    """
    p = np.sort(pitches)[None, :]
    right = p >= SPLITS[:, None]
    left = ~right
    big = 1000
    rh_low = np.where(right, p, big).min(axis=1)
    rh_high = np.where(right, p, -big).max(axis=1)
    lh_low = np.where(left, p, big).min(axis=1)
    lh_high = np.where(left, p, -big).max(axis=1)
    rh_span = np.where(right.any(axis=1), rh_high - rh_low, 0)
    lh_span = np.where(left.any(axis=1), lh_high - lh_low, 0)
    cost = SPAN_COST * (np.maximum(rh_span - HAND_SPAN, 0) + np.maximum(lh_span - HAND_SPAN, 0))
    cost += REGISTER_COST * (np.where(right, np.maximum(RIGHT_FLOOR - p, 0), 0).sum(axis=1)
                             + np.where(left, np.maximum(p - LEFT_CEILING, 0), 0).sum(axis=1))
    if middle is not None:
        cost += MIDDLE_COST * np.abs(SPLITS - middle) / 12
    return cost


def assign_staves(notes: list[Note], chord_window_s: float = CHORD_WINDOW_S) -> list[int]:
    """Staff (``TREBLE`` or ``BASS``) for each note, notes given sorted by onset.

    >>> from kimiwonosete.notes import Note
    >>> assign_staves([Note(0, 1, 48, 80), Note(0, 1, 72, 80), Note(1, 2, 57, 80)])
    [1, 0, 1]
    """
    if not notes:
        return []
    chords = _chords(notes, chord_window_s)
    pitches = np.array([n.pitch for n in notes])
    move = MOVE_COST * np.abs(SPLITS[:, None] - SPLITS[None, :])  # [from, to]
    middles = local_middles(notes, chords)
    total = split_costs(pitches[chords[0]], middles[0])
    back = np.empty((len(chords), len(SPLITS)), dtype=np.int32)
    for k in range(1, len(chords)):
        step = total[:, None] + move
        back[k] = np.argmin(step, axis=0)
        total = step[back[k], np.arange(len(SPLITS))] + split_costs(pitches[chords[k]], middles[k])
    state = int(np.argmin(total))
    staff = [TREBLE] * len(notes)
    for k in range(len(chords) - 1, -1, -1):
        for i in chords[k]:
            staff[i] = TREBLE if pitches[i] >= SPLITS[state] else BASS
        state = int(back[k, state])
    return staff


def within_span(notes: list[Note], staff: list[int], chord_window_s: float = CHORD_WINDOW_S) -> list[int]:
    """``staff`` with each chord's staves kept within ``HAND_SPAN``: while one staff's notes in a
    chord stretch wider, its note nearest the other staff moves across, if the other hand can
    take it (``notes`` sorted by onset).

    The staff model decides each note by itself; written for one hand, a chord's notes on a
    staff lie within a hand's reach (in the training scores 1.8 % of a staff's chords in
    Mutopia and 1.1 % in piano-midi.de span more than 14 semitones).

    >>> from kimiwonosete.notes import Note
    >>> within_span([Note(0, 1, 40, 80), Note(0, 1, 60, 80), Note(0, 1, 72, 80)], [BASS, BASS, TREBLE])
    [1, 0, 0]
    """
    pitches = np.array([n.pitch for n in notes])
    out = np.array(staff, dtype=int)
    for chord in _chords(notes, chord_window_s):
        for side in (TREBLE, BASS):
            while True:
                mine, theirs = chord[out[chord] == side], chord[out[chord] != side]
                if len(mine) < 2 or np.ptp(pitches[mine]) <= HAND_SPAN:
                    break
                inner = mine[np.argmin(pitches[mine])] if side == TREBLE else mine[np.argmax(pitches[mine])]
                if len(theirs) and np.ptp(pitches[np.r_[theirs, inner]]) > HAND_SPAN:
                    break
                out[inner] = 1 - side
    return out.tolist()


def lift_stray_notes(notes: list[Note], staff: list[int]) -> list[int]:
    """``staff`` with lower-staff notes far above a low texture moved to the upper staff (see
    ``STRAY_FROM``); ``notes`` sorted by onset.

    >>> from kimiwonosete.notes import Note
    >>> bass = [Note(0.5 * i, 0.5 * i + 0.4, 40 + i % 3, 80) for i in range(8)]
    >>> lift_stray_notes(bass + [Note(1.0, 1.2, 79, 80)], [BASS] * 9)[-1]
    0
    >>> lift_stray_notes(bass + [Note(1.0, 1.2, 62, 80)], [BASS] * 9)[-1]  # D4: stays
    1
    """
    onsets = np.array([n.onset for n in notes])
    pitches = np.array([n.pitch for n in notes])
    lower = np.array(staff) == BASS
    out = list(staff)
    for i in np.nonzero(lower & (pitches >= STRAY_FROM))[0]:
        near = lower & (np.abs(onsets - onsets[i]) < STRAY_WINDOW_S)
        if np.median(pitches[near]) <= STRAY_MIDDLE:
            out[i] = TREBLE
    return out

