"""Time signature and downbeat phase from notes placed on the beat grid."""

from __future__ import annotations

import numpy as np

from kimiwonosete.score.model import TimeSignature

NEAR_BEAT = 0.12  # an onset within this many beats of a beat counts as on it
TERNARY_SHARE = 0.6  # share of off-beat onsets on thirds that makes the beat compound
# 4/4 vs 2/4: with equally strong beats 1 and 3, 4's contrast is 2/3 of 2's. Accents alone
# rarely separate the two, and 4/4 is far more common, so 2/4 needs 4's contrast well below that.
PREFER_FOUR = 0.6
MAX_ACCENT_BEATS = 4.0
BASS_REFERENCE = 72  # pitches below this add to a beat's accent, more the lower they are
BASS_WEIGHT = 1.5


def is_compound(onset_beats: np.ndarray) -> bool:
    """True when off-beat onsets mostly fall on thirds of the beat (6/8-like subdivision)."""
    frac = onset_beats - np.floor(onset_beats)
    off = frac[(frac > NEAR_BEAT) & (frac < 1 - NEAR_BEAT)]
    if len(off) < 8:
        return False
    err3 = np.abs(off * 3 - np.round(off * 3))
    err4 = np.abs(off * 4 - np.round(off * 4))
    return float(np.mean(err3 < err4)) > TERNARY_SHARE and float(np.mean(err3 < 0.15)) > TERNARY_SHARE


def beat_accents(onset_beats: np.ndarray, durations: np.ndarray, pitches: np.ndarray) -> tuple[np.ndarray, int]:
    """How strongly each beat sounds like a downbeat, and the index of the first beat.

    A beat is accented by a long note starting on it and by a low bass note (harmony tends to
    change, and the bass to move, on downbeats).
    """
    idx = np.round(onset_beats).astype(int)
    on_beat = np.abs(onset_beats - idx) < NEAR_BEAT
    base = int(idx.min())
    n = int(idx.max()) - base + 1
    longest = np.zeros(n)
    lowest = np.full(n, np.inf)
    np.maximum.at(longest, idx[on_beat] - base, np.clip(durations[on_beat], 0, MAX_ACCENT_BEATS))
    np.minimum.at(lowest, idx[on_beat] - base, pitches[on_beat].astype(float))
    lowness = np.clip((BASS_REFERENCE - lowest) / 24.0, 0, 2)
    accent = longest + BASS_WEIGHT * np.where(np.isfinite(lowest), lowness, 0)
    return accent, base


def choose_meter(onset_beats: np.ndarray, durations: np.ndarray, pitches: np.ndarray) -> tuple[TimeSignature, int]:
    """Time signature and the index of the first downbeat beat (0 <= phase < beats per bar).

    ``durations`` are in beats; ``pitches`` MIDI numbers, one per onset.
    """
    compound = is_compound(onset_beats)
    default = (TimeSignature(6, 8) if compound else TimeSignature(4, 4)), 0
    if not (np.abs(onset_beats - np.round(onset_beats)) < NEAR_BEAT).any():
        return default
    accent, base = beat_accents(onset_beats, durations, pitches)
    best = {m: (-np.inf, 0) for m in (2, 3, 4)}  # beats per bar -> (contrast, phase)
    for m in best:
        for phase in range(m):
            sel = (np.arange(len(accent)) + base - phase) % m == 0
            if not sel.any() or sel.all():
                continue  # too few beats to compare this phase
            contrast = float(accent[sel].mean() - accent[~sel].mean())
            if contrast > best[m][0]:
                best[m] = (contrast, phase)
    if all(c == -np.inf for c, _ in best.values()):
        return default
    m = 4 if best[4][0] >= PREFER_FOUR * best[2][0] else 2
    if best[3][0] > best[m][0]:
        m = 3
    ts = TimeSignature(3 * m, 8) if compound else TimeSignature(m, 4)
    return ts, best[m][1]
