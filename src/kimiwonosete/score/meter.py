"""Time signature and downbeat phase from notes placed on the beat grid."""

from __future__ import annotations

import numpy as np

from kimiwonosete.score.model import TimeSignature

NEAR_BEAT = 0.12  # an onset within this many beats of a beat counts as on it
TERNARY_SHARE = 0.6  # share of off-beat onsets on thirds that makes the beat compound
PREFER_FOUR = 0.85  # 4 beats win over 2 unless 2's contrast is clearly higher


def is_compound(onset_beats: np.ndarray) -> bool:
    """True when off-beat onsets mostly fall on thirds of the beat (6/8-like subdivision)."""
    frac = onset_beats - np.floor(onset_beats)
    off = frac[(frac > NEAR_BEAT) & (frac < 1 - NEAR_BEAT)]
    if len(off) < 8:
        return False
    err3 = np.abs(off * 3 - np.round(off * 3))
    err4 = np.abs(off * 4 - np.round(off * 4))
    return float(np.mean(err3 < err4)) > TERNARY_SHARE and float(np.mean(err3 < 0.15)) > TERNARY_SHARE


def choose_meter(onset_beats: np.ndarray, weights: np.ndarray) -> tuple[TimeSignature, int]:
    """Time signature and the index of the first downbeat beat (0 <= phase < beats per bar).

    ``weights`` says how much each onset marks a downbeat (longer and lower notes more).
    """
    compound = is_compound(onset_beats)
    idx = np.round(onset_beats).astype(int)
    on_beat = np.abs(onset_beats - idx) < NEAR_BEAT
    if not on_beat.any():
        return (TimeSignature(6, 8) if compound else TimeSignature(4, 4)), 0
    n_beats = int(idx.max()) + 1
    accent = np.bincount(idx[on_beat] - idx.min(), weights=weights[on_beat], minlength=n_beats)
    base = int(idx.min())
    best: dict[int, tuple[float, int]] = {}
    for m in (2, 3, 4):
        for phase in range(m):
            sel = (np.arange(len(accent)) + base - phase) % m == 0
            contrast = accent[sel].mean() - accent[~sel].mean() if (~sel).any() else 0.0
            if m not in best or contrast > best[m][0]:
                best[m] = (float(contrast), phase)
    m = 4 if best[4][0] >= PREFER_FOUR * best[2][0] else 2
    if best[3][0] > best[m][0]:
        m = 3
    ts = TimeSignature(3 * m, 8) if compound else TimeSignature(m, 4)
    return ts, best[m][1]
