"""Key signature from pitch content (key profiles) and pitch spelling on the line of fifths, so
that accidentals fit the key."""

from __future__ import annotations

import numpy as np

from kimiwonosete.notes import Note
from kimiwonosete.score.learned.net import packaged_weights
from kimiwonosete.score.model import STEPS, KeySignature, Pitch, on_line_of_fifths

#: Aarden's key profiles (pitch-class shares in major and minor pieces of the Essen collection;
#: Aarden 2003, as music21 ships them). The piece's key signature against ASAP's, every 3rd
#: performance (89; one signature per piece): Krumhansl-Kessler's 0.695, Temperley's 0.803,
#: Albrecht-Shanahan's 0.806, these 0.810. Spelling stays the same (0.930 -> 0.928).
MAJOR_PROFILE = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                          0.232998, 4.95122])
MINOR_PROFILE = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                          7.37619, 1.75623])
MAX_DURATION_WEIGHT_S = 2.0
#: The piece's key weighs the profile correlation against the bass of its last notes (those
#: starting within FINAL_S of the last onset), by weights per mode fitted to renderings of the
#: training corpus (``python -m training.train_keys``; MODEL_CARD.md): pieces end on the tonic,
#: which profiles alone confuse with the dominant.
KEY_WEIGHTS = "key_logit.npz"
FINAL_S = 1.5
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
#: Context spelling (Meredith's ps13, stage 1; D. Meredith, "The ps13 pitch spelling algorithm",
#: JNMR 35(2), 2006): each note takes the letter that the pitch classes among the CONTEXT_BEFORE
#: notes before it and the CONTEXT_AFTER from it on vote for, each heard as a degree of every
#: possible tonic. Alone it spells whole passages an enharmonic away (every 4th ASAP score, note
#: by note: 0.832, against the key windows' 0.927), so it is taken only within the local key's
#: window widened by CONTEXT_FLATTER / CONTEXT_SHARPER fifths (#5 against b6, #2 against b3,
#: ...): all the scores 0.914 -> 0.920 (both halves alike: 0.922 -> 0.927, 0.907 -> 0.914;
#: widened by 1 / 1: 0.919, 2 / 2: 0.917, 0 / 1: 0.918). On all 266 ASAP performances from their notes
#: (benchmarks/notation.py, both score models): spelling 0.927 -> 0.931.
CONTEXT_BEFORE, CONTEXT_AFTER = 10, 42  # Meredith's values
CONTEXT_FLATTER, CONTEXT_SHARPER = 1, 2
_DEGREE_LETTER = np.array([0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6])  # semitones above a tonic -> letters above it
_TONIC_LETTER = _DEGREE_LETTER  # the tonic on each pitch class: C Db D Eb E F F# G Ab A Bb B
_LETTER_FIFTHS = np.array([{on_line_of_fifths(f)[0]: f for f in range(-1, 6)}[s] for s in STEPS])  # C D E ... B
_LETTER_CHROMA = _LETTER_FIFTHS * 7 % 12


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
TONICS = np.repeat(np.arange(12), 2)  # each key's tonic pitch class, in KEYS' order
MINOR = np.tile([0, 1], 12)  # 1 for a minor key
FIFTHS = np.array([k.fifths for k in KEYS])


def _key_fit(hist: np.ndarray) -> np.ndarray:
    """Correlation of a pitch-class histogram with each of ``KEYS`` (zeros for a flat one)."""
    if hist.std() == 0:
        return np.zeros(len(KEYS))
    return PROFILES @ ((hist - hist.mean()) / hist.std()) / 12


def key_inputs(onsets: np.ndarray, offsets: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """What the piece's key is chosen by, for each of ``KEYS``: (24, 13), the correlation of the
    duration-weighted pitch-class histogram with the key's profile, then the last notes' bass
    one-hot by its interval above the key's tonic (0-11 semitones).

    >>> x = key_inputs(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([67, 55]))
    >>> x.shape, x[KEYS.index(KeySignature(1, "major")), 1:].argmax()  # G in G major: the tonic
    ((24, 13), np.int64(0))
    """
    onsets, pitches = np.asarray(onsets, dtype=float), np.asarray(pitches, dtype=int)
    weights = np.minimum(np.asarray(offsets, dtype=float) - onsets, MAX_DURATION_WEIGHT_S)
    fit = _key_fit(np.bincount(pitches % 12, weights=weights, minlength=12))
    bass = int(pitches[onsets >= onsets.max() - FINAL_S].min()) % 12
    final = np.zeros((len(KEYS), 12))
    final[np.arange(len(KEYS)), (bass - TONICS) % 12] = 1.0
    return np.concatenate([fit[:, None], final], axis=1)


def key_scores(inputs: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Each of ``KEYS``' score from its :func:`key_inputs` (higher: likelier), by the packaged
    weights: ``w`` (2, 13) and ``b`` (2,), major then minor."""
    w = weights or packaged_weights(KEY_WEIGHTS)
    return (inputs * w["w"][MINOR]).sum(axis=1) + w["b"][MINOR]


def best_signature(scores: np.ndarray) -> int:
    """The signature (fifths) whose keys' :func:`key_scores` sum to the most probability.

    >>> best_signature(np.where(FIFTHS == 2, 1.0, 0.0))
    2
    """
    pooled = np.logaddexp.reduce(np.where(FIFTHS[None, :] == FIFTHS[:, None], scores[None, :], -np.inf), axis=1)
    return int(FIFTHS[int(np.argmax(pooled))])


def estimate_key(notes: list[Note]) -> KeySignature:
    """The key signature whose two keys score best together (:func:`key_scores`: the weights
    are fitted to signatures, as the training scores do not write the mode), in the mode whose
    profile fits better.

    >>> from kimiwonosete.notes import Note
    >>> scale = [Note(i, i + 1, p, 80) for i, p in enumerate([67, 69, 71, 72, 74, 76, 78, 79, 62, 55])]
    >>> estimate_key(scale)
    KeySignature(fifths=1, mode='major')
    """
    if not notes:
        return KEYS[0]
    inputs = key_inputs(np.array([n.onset for n in notes]), np.array([n.offset for n in notes]),
                        np.array([n.pitch for n in notes]))
    same = np.flatnonzero(FIFTHS == best_signature(key_scores(inputs)))
    return KEYS[int(same[np.argmax(inputs[same, 0])])]


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


def named_like(keys: list[KeySignature], piece: KeySignature) -> list[KeySignature]:
    """``keys`` with each six-accidental key (F# or Gb major, D# or Eb minor) named with the
    accidentals of the ``piece``'s signature: a Gb major trio in Eb minor is written in flats.

    >>> named_like([KeySignature(6), KeySignature(2)], KeySignature(-6, "minor"))
    [KeySignature(fifths=-6, mode='major'), KeySignature(fifths=2, mode='major')]
    """
    if piece.fifths == 0:
        return keys
    sign = 1 if piece.fifths > 0 else -1
    return [KeySignature(k.fifths + 12 * sign, k.mode) if abs(k.fifths) == 6 and k.fifths * sign < 0 else k
            for k in keys]


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


def _window_low(key: KeySignature) -> int:
    return key.fifths + WINDOW_LOW[key.mode]


def context_fifths(pitches: np.ndarray) -> np.ndarray:
    """Line-of-fifths positions (C 0, G 1, F -1) of pitches in the order they are played, by
    the votes of the pitch classes around each (ps13's first stage).

    >>> context_fifths(np.array([64, 68, 69, 71, 72, 68, 69])).tolist()  # A minor: G#, not Ab
    [4, 8, 3, 5, 0, 8, 3]
    """
    chroma = np.asarray(pitches, dtype=int) % 12
    n = len(chroma)
    counts = np.zeros((n + 1, 12))
    counts[np.arange(1, n + 1), chroma] = 1
    counts = counts.cumsum(axis=0)
    idx = np.arange(n)
    around = counts[np.minimum(idx + CONTEXT_AFTER, n)] - counts[np.maximum(idx - CONTEXT_BEFORE, 0)]  # (n, 12)
    tonic = np.arange(12)
    letter = (_TONIC_LETTER[None, :] + _DEGREE_LETTER[(chroma[:, None] - tonic[None, :]) % 12]) % 7  # (n, tonic)
    votes = np.zeros((n, 7))
    np.add.at(votes, (np.repeat(idx, 12), letter.ravel()), around.ravel())
    best = votes.argmax(axis=1)
    alter = (chroma - _LETTER_CHROMA[best] + 6) % 12 - 6
    return _LETTER_FIFTHS[best] + 7 * alter


def spell_notes(notes: list[Note], keys: list[KeySignature]) -> list[Pitch]:
    """Each note spelled by its context (:func:`context_fifths`) where that stays near its key's
    window, else by the key (:func:`spell`); ``notes`` in the order they are played, ``keys``
    the key in force at each (:func:`local_keys`).

    A turn to A minor inside C major: the key alone writes its G# as Ab.

    >>> from kimiwonosete.notes import Note
    >>> turn = [Note(0.25 * i, 0.25 * i + 0.25, p, 80) for i, p in enumerate([64, 68, 69, 71, 72, 68, 69] * 4)]
    >>> c_major = [KeySignature(0, "major")] * len(turn)
    >>> [(p.step, p.alter) for p in spell_notes(turn, c_major)][:3], (spell(68, c_major[0]).step, spell(68, c_major[0]).alter)
    ([('E', 0), ('G', 1), ('A', 0)], ('A', -1))
    """
    if not notes:
        return []
    fifths = context_fifths(np.array([n.pitch for n in notes]))
    out = []
    for n, f, key in zip(notes, fifths.tolist(), keys):
        low = _window_low(key)
        near = low - CONTEXT_FLATTER <= f <= low + 11 + CONTEXT_SHARPER
        out.append(_named(n.pitch, f) if near else spell(n.pitch, key))
    return out


def spell(midi: int, key: KeySignature) -> Pitch:
    """Spell ``midi`` in ``key``: the name whose line-of-fifths position is in the key's window.

    >>> spell(66, KeySignature(2)), spell(66, KeySignature(-3))
    (Pitch(midi=66, step='F', alter=1, octave=4), Pitch(midi=66, step='G', alter=-1, octave=4))
    """
    low = _window_low(key)
    pos = (midi % 12) * 7 % 12  # C=0, G=1, ... as a position in 0..11
    pos += 12 * ((low - pos + 11) // 12)  # shift by octaves of fifths into [low, low + 11]
    return _named(midi, pos)


def _named(midi: int, fifths: int) -> Pitch:
    """``midi`` with the name at ``fifths`` on the line of fifths (one of its pitch class's)."""
    step, alter = on_line_of_fifths(fifths)
    return Pitch(midi, step, alter, (midi - alter) // 12 - 1)
