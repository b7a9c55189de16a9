"""Grace notes: a very short note snapped onto the note after it is an ornament, not rhythm.

Quantized as a note, an acciaccatura becomes a 16th or a triplet with a rest around it and
drags the beat tracker; written as a grace note it takes no time, as the composer wrote it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from kimiwonosete.notes import Note

MAX_GRACE_S = 0.09  # an ornament is held at most this long ...
MIN_LEAD_S, MAX_LEAD_S = 0.02, 0.16  # ... and its main note starts this long after it
MAX_STEP = 4  # semitones between an ornament and its main note
MAIN_RATIO = 3.0  # the main note lasts at least this many times as long as the ornament
ALONE_S = 0.03  # an ornament is not part of a chord: no other note starts this close to it


def split_ornaments(notes: list[Note]) -> tuple[list[Note], list[tuple[Note, int]]]:
    """(the notes without ornaments, [(ornament, index of its main note in the first list)]).

    A note is an ornament when it is very short, alone, a step or two from a much longer note
    that starts right after it, and not the end of a run (no close note right before it).
    Notes are given sorted by onset.

    >>> from bisect import bisect_left, bisect_right

from kimiwonosete.notes import Note
    >>> kept, graces = split_ornaments([Note(0.0, 0.05, 74, 60), Note(0.08, 0.6, 72, 80), Note(0.6, 1.2, 67, 80)])
    >>> [n.pitch for n in kept], [(g.pitch, i) for g, i in graces]
    ([72, 67], [(74, 0)])
    """
    onsets = [n.onset for n in notes]
    ornament_of: dict[int, int] = {}  # ornament index -> main note index
    for i, n in enumerate(notes):
        if n.offset - n.onset > MAX_GRACE_S:
            continue
        lo = bisect_left(onsets, n.onset - MAX_LEAD_S - ALONE_S)
        hi = bisect_right(onsets, n.onset + MAX_LEAD_S + ALONE_S)
        near = [j for j in range(lo, hi) if j != i]
        if any(abs(notes[j].onset - n.onset) < ALONE_S for j in near):
            continue
        if any(0 < n.onset - notes[j].onset <= MAX_LEAD_S and abs(notes[j].pitch - n.pitch) <= MAX_STEP for j in near):
            continue  # the end of a run
        mains = [j for j in near if MIN_LEAD_S <= notes[j].onset - n.onset <= MAX_LEAD_S
                 and 0 < abs(notes[j].pitch - n.pitch) <= MAX_STEP
                 and notes[j].offset - notes[j].onset >= MAIN_RATIO * (n.offset - n.onset)]
        if mains:
            ornament_of[i] = min(mains, key=lambda j: notes[j].onset)
    kept_index: dict[int, int] = {}
    kept: list[Note] = []
    for i, n in enumerate(notes):
        if i not in ornament_of:
            kept_index[i] = len(kept)
            kept.append(n)
    graces = [(notes[i], kept_index[j]) for i, j in sorted(ornament_of.items()) if j in kept_index]
    return kept, graces
