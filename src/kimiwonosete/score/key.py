"""Key signature from pitch content (key profiles) and pitch spelling on the line of fifths, so
that accidentals fit the key."""

from __future__ import annotations

import numpy as np

from kimiwonosete.notes import Note
from kimiwonosete.score.model import KeySignature, Pitch, on_line_of_fifths

#: Aarden's key profiles (pitch-class shares in major and minor pieces of the Essen collection;
#: Aarden 2003, as music21 ships them). The piece's key signature against ASAP's, every 3rd
#: performance (89; one signature per piece): Krumhansl-Kessler's 0.695, Temperley's 0.803,
#: Albrecht-Shanahan's 0.806, these 0.810. Spelling stays the same (0.930 -> 0.928).
MAJOR_PROFILE = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                          0.232998, 4.95122])
MINOR_PROFILE = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                          7.37619, 1.75623])
MAX_DURATION_WEIGHT_S = 2.0
# Spelling window on the line of fifths, relative to the signature's fifths: the 12 positions
# from (k + LOW) to (k + LOW + 11). Minor keys reach two steps sharper, for the raised 6th and 7th.
WINDOW_LOW = {"major": -4, "minor": -2}
LOCAL_HOP_S = 1.0  # local keys: one estimate per second ...
LOCAL_HALF_WINDOW_S = 8.0  # ... from the notes within this either side
KEY_CHANGE_COST = 6.0  # in summed correlations: about six seconds of a clearly better key
KEY_BARS = 8  # a new key signature is written for a new key held this many bars ...
#: ... at least this many fifths from the signature in force: a modulation to the dominant or
#: subdominant (a sonata's second theme) is written with accidentals, not a new signature. Key
#: signatures against ASAP's (every 3rd performance): a change for any new key 0.787, none at
#: all 0.810, only for keys 2 or more fifths away 0.817.
MIN_CHANGE_FIFTHS = 2


def _signature(tonic: int, mode: str) -> int:
    """Signature fifths of the key on pitch class ``tonic``: the spelling with fewer accidentals;
    of the two six-accidental keys, F# major and Eb minor (the more usual names in the repertoire,
    and in the evaluation scores: F# major ten times to Gb major's seven).

    >>> _signature(6, "major"), _signature(3, "minor"), _signature(1, "major"), _signature(11, "major")
    (6, -6, -5, 5)
    """
    f = ((tonic if mode == "major" else tonic + 3) * 7) % 12
    limit = 6 if mode == "major" else 5
    return f - 12 if f > limit else f


def _key_profiles() -> tuple[list[KeySignature], np.ndarray]:
    """The 24 keys and their profiles, standardized so a dot product / 12 is a correlation."""
    keys, profiles = [], []
    for tonic in range(12):
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            keys.append(KeySignature(_signature(tonic, mode), mode))
            profiles.append(np.roll(profile, tonic))
    z = np.array(profiles)
    return keys, (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)


KEYS, PROFILES = _key_profiles()  # C major first: what an empty or flat histogram gives


def _key_fit(hist: np.ndarray) -> np.ndarray:
    """Correlation of a pitch-class histogram with each of ``KEYS`` (zeros for a flat one)."""
    if hist.std() == 0:
        return np.zeros(len(KEYS))
    return PROFILES @ ((hist - hist.mean()) / hist.std()) / 12


def estimate_key(notes: list[Note]) -> KeySignature:
    """The best-correlating of the 24 major/minor keys, weighting pitches by duration.

    >>> from kimiwonosete.notes import Note
    >>> scale = [Note(i, i + 1, p, 80) for i, p in enumerate([67, 69, 71, 72, 74, 76, 78, 79, 62, 55])]
    >>> estimate_key(scale)
    KeySignature(fifths=1, mode='major')
    """
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += min(n.offset - n.onset, MAX_DURATION_WEIGHT_S)
    return KEYS[int(np.argmax(_key_fit(hist)))]


def local_keys(notes: list[Note]) -> list[KeySignature]:
    """The key in force at each note: keys correlated with the pitches around every second
    (``LOCAL_HALF_WINDOW_S`` either side), then the best path through them (Viterbi) that
    pays ``KEY_CHANGE_COST`` per change, so only a long stretch in a new key changes it.

    >>> from kimiwonosete.notes import Note
    >>> c = [Note(i * 0.25, i * 0.25 + 0.25, p, 80) for i, p in enumerate([60, 64, 67, 72, 65, 69, 67, 71] * 12)]
    >>> a = [Note(24 + i * 0.25, 24 + i * 0.25 + 0.25, p, 80) for i, p in enumerate([62, 66, 69, 74, 67, 71, 69, 73] * 12)]
    >>> keys = local_keys(c + a)
    >>> str(keys[0]), str(keys[-1])
    ('C major', 'D major')
    """
    if not notes:
        return []
    onsets = np.array([n.onset for n in notes])
    weights = np.minimum([n.offset - n.onset for n in notes], MAX_DURATION_WEIGHT_S)
    classes = np.array([n.pitch % 12 for n in notes])
    centres = np.arange(0.0, onsets.max() + LOCAL_HOP_S, LOCAL_HOP_S)
    fit = np.zeros((len(centres), len(KEYS)))
    for i, c in enumerate(centres):
        near = np.abs(onsets - c) <= LOCAL_HALF_WINDOW_S
        fit[i] = _key_fit(np.bincount(classes[near], weights=weights[near], minlength=12))
    score, back = fit[0].copy(), np.zeros(fit.shape, dtype=int)
    for i in range(1, len(centres)):
        best = int(np.argmax(score))
        stay = score >= score[best] - KEY_CHANGE_COST
        back[i] = np.where(stay, np.arange(len(KEYS)), best)
        score = np.where(stay, score, score[best] - KEY_CHANGE_COST) + fit[i]
    path = np.empty(len(centres), dtype=int)
    path[-1] = int(np.argmax(score))
    for i in range(len(centres) - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    at = np.clip(np.round(onsets / LOCAL_HOP_S).astype(int), 0, len(centres) - 1)
    return [KEYS[path[i]] for i in at]


def key_changes(bar_keys: list[KeySignature | None], first: KeySignature) -> tuple[tuple[int, KeySignature], ...]:
    """Where the key signature changes: at a bar where the local key's signature is at least
    ``MIN_CHANGE_FIFTHS`` from the current one and stays the same for ``KEY_BARS`` bars with
    notes running. ``bar_keys``: the local key of each bar (None for a bar without notes).

    >>> g, d, a = KeySignature(1), KeySignature(2), KeySignature(3)
    >>> key_changes([g] * 4 + [a] * 9 + [g] * 2, g)
    ((4, KeySignature(fifths=3, mode='major')),)
    >>> key_changes([g] * 4 + [d] * 9 + [g] * 2, g)
    ()
    """
    changes: list[tuple[int, KeySignature]] = []
    current = first
    for b, k in enumerate(bar_keys):
        if k is None or abs(k.fifths - current.fifths) < MIN_CHANGE_FIFTHS:
            continue
        ahead = [x for x in bar_keys[b:] if x is not None][:KEY_BARS]
        if len(ahead) == KEY_BARS and all(x.fifths == k.fifths for x in ahead):
            changes.append((b, k))
            current = k
    return tuple(changes)


def spell(midi: int, key: KeySignature) -> Pitch:
    """Spell ``midi`` in ``key``: the name whose line-of-fifths position is in the key's window.

    >>> spell(66, KeySignature(2)), spell(66, KeySignature(-3))
    (Pitch(midi=66, step='F', alter=1, octave=4), Pitch(midi=66, step='G', alter=-1, octave=4))
    """
    low = key.fifths + WINDOW_LOW[key.mode]
    pos = (midi % 12) * 7 % 12  # C=0, G=1, ... as a position in 0..11
    pos += 12 * ((low - pos + 11) // 12)  # shift by octaves of fifths into [low, low + 11]
    step, alter = on_line_of_fifths(pos)
    return Pitch(midi, step, alter, (midi - alter) // 12 - 1)
