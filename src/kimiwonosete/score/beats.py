"""Tempo and beats from note onsets: an onset envelope, a tempo by autocorrelation, a local tempo
curve that follows tempo changes (a smoothed tempogram path), and dynamic-programming beat
tracking (Ellis 2007) against that curve."""

from __future__ import annotations

import numpy as np

from kimiwonosete.notes import Note

FRAME_RATE = 100.0  # envelope frames per second
SMOOTH_S = 0.02
MAX_HELD_S = 1.0  # a note's length counts toward its onset's strength up to this
#: Beat tracking weighs onsets by how long their notes are held (ASAP beat F1, two disjoint
#: sixths of the performances: 0.559 -> 0.591 and 0.501 -> 0.526); the tempo estimate does not,
#: as held bass notes on beats 1 and 3 then pull it to half speed.
TRACK_HELD_WEIGHT = 1.0
MIN_BPM, MAX_BPM = 40.0, 220.0
PRIOR_BPM, PRIOR_OCTAVES = 100.0, 0.6
TIGHTNESS = 100.0
DEFAULT_PERIOD_S = 0.6
#: Local tempo: autocorrelation in windows of LOCAL_WINDOW_S every LOCAL_HOP_S, periods within
#: LOCAL_RANGE_OCTAVES of the global one, a path that pays TEMPO_CHANGE_COST times the squared
#: change (in octaves) between windows (a window's evidence is worth at most about 3). Against
#: one global tempo this raised beat F1 on every 6th ASAP performance 0.521 -> 0.557; on all 266,
#: together with the held-note weighting, 0.495 -> 0.540 (benchmarks/notation.py). It also
#: follows a section's new tempo (tests/score/test_tempo.py).
LOCAL_WINDOW_S, LOCAL_HOP_S = 8.0, 1.0
LOCAL_RANGE_OCTAVES, LOCAL_STEPS = 0.6, 25
TEMPO_CHANGE_COST = 64.0


def onset_envelope(notes: list[Note], duration: float, held_weight: float = 0.0) -> np.ndarray:
    """Onset strength at ``FRAME_RATE``: each onset adds its loudness, more for low notes, and
    with ``held_weight`` more for long ones (beats carry the bass and the held notes; passing
    notes are short)."""
    n = int(np.ceil(duration * FRAME_RATE)) + 1
    env = np.zeros(n)
    for note in notes:
        i = min(max(int(round(note.onset * FRAME_RATE)), 0), n - 1)
        held = min(note.offset - note.onset, MAX_HELD_S)
        env[i] += (note.velocity / 127.0) * (1.0 + 0.5 * (note.pitch < 60)) * (1.0 + held_weight * held)
    return smooth(env)


def smooth(env: np.ndarray) -> np.ndarray:
    """An envelope of impulses at ``FRAME_RATE`` smoothed by a Gaussian of ``SMOOTH_S``."""
    width = SMOOTH_S * FRAME_RATE
    k = np.arange(-int(3 * width), int(3 * width) + 1)
    return np.convolve(env, np.exp(-0.5 * (k / width) ** 2), mode="same")


def extension(beats: np.ndarray, first: float, last: float) -> tuple[np.ndarray, np.ndarray]:
    """Beats to add before the first and after the last of ``beats`` (at least two), at the
    neighbouring period, so the grid covers ``first`` to ``last``."""
    head_p, tail_p = beats[1] - beats[0], beats[-1] - beats[-2]
    n_head = max(0, int(np.ceil((beats[0] - first) / head_p + 0.1)))
    n_tail = max(0, int(np.ceil((last - beats[-1]) / tail_p)) + 1)
    return beats[0] - head_p * np.arange(n_head, 0, -1), beats[-1] + tail_p * np.arange(1, n_tail + 1)


def estimate_period(env: np.ndarray) -> float:
    """Beat period in seconds: the autocorrelation peak weighted by a log-tempo prior."""
    lags = np.arange(int(FRAME_RATE * 60 / MAX_BPM), int(FRAME_RATE * 60 / MIN_BPM) + 1)
    if len(env) <= lags[-1] + 1 or not env.any():
        return DEFAULT_PERIOD_S
    centred = env - env.mean()
    ac = np.array([np.dot(centred[:-lag], centred[lag:]) for lag in lags]) / len(env)
    bpm = 60 * FRAME_RATE / lags
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    return float(lags[np.argmax(np.maximum(ac, 0) * prior)] / FRAME_RATE)


def local_periods(env: np.ndarray, period_s: float) -> np.ndarray:
    """Beat period (in frames) at every envelope frame: per window, the autocorrelation peak
    near ``period_s``, chosen jointly over windows (Viterbi) so the tempo changes smoothly.

    >>> from kimiwonosete.notes import Note
    >>> notes = [Note(0.5 * i, 0.5 * i + 0.3, 60, 80) for i in range(30)]  # 120 BPM, then 150
    >>> notes += [Note(15 + 0.4 * i, 15.3 + 0.4 * i, 60, 80) for i in range(40)]
    >>> p = local_periods(onset_envelope(notes, 31.0), 0.45) / FRAME_RATE
    >>> float(round(p[500], 1)), float(round(p[2500], 1))
    (0.5, 0.4)
    """
    fps = FRAME_RATE
    lags = np.unique(np.round(period_s * fps * 2 ** np.linspace(-LOCAL_RANGE_OCTAVES, LOCAL_RANGE_OCTAVES, LOCAL_STEPS)))
    lags = lags[lags >= 2].astype(int)
    half, hop = int(LOCAL_WINDOW_S * fps / 2), int(LOCAL_HOP_S * fps)
    centres = np.arange(0, max(len(env) - 1, 1), hop)
    strength = np.zeros((len(centres), len(lags)))
    for i, c in enumerate(centres):
        seg = env[max(0, c - half) : c + half]
        seg = seg - seg.mean()
        for j, lag in enumerate(lags):
            if len(seg) > lag:
                strength[i, j] = np.dot(seg[:-lag], seg[lag:]) / len(seg)
    strength = np.maximum(strength, 0)
    if not strength.any():  # no periodicity anywhere (one chord, say): keep the global period
        return np.full(len(env), float(period_s * fps))
    strength /= strength.max(axis=1, keepdims=True) + 1e-9
    emission = np.log(strength + 0.05)
    change = -TEMPO_CHANGE_COST * np.log2(lags[:, None] / lags[None, :]) ** 2
    total, back = emission[0].copy(), np.zeros(strength.shape, dtype=int)
    for i in range(1, len(centres)):
        cand = total[:, None] + change
        back[i] = cand.argmax(axis=0)
        total = cand.max(axis=0) + emission[i]
    path = [int(total.argmax())]
    for i in range(len(centres) - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return np.interp(np.arange(len(env)), centres, lags[np.array(path[::-1])].astype(float))


def track_beats(env: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Beat times (s) maximising onset strength on beats plus spacing close to the local period
    (``periods``: frames, one per envelope frame), Ellis' dynamic programme."""
    n = len(env)
    norm = env / (env.std() + 1e-9)
    score = norm.copy()
    back = np.full(n, -1)
    for t in range(1, n):
        period = periods[t]
        lo, hi = int(round(period / 2)), int(round(2 * period))
        prev = np.arange(max(0, t - hi), t - lo + 1)
        if len(prev) == 0:
            continue
        cand = score[prev] - TIGHTNESS * np.log((t - prev) / period) ** 2
        j = int(np.argmax(cand))
        if cand[j] > 0:
            score[t] = norm[t] + cand[j]
            back[t] = prev[j]
    # End on the best-scoring frame in the last beat period that still has onsets.
    active = np.nonzero(env > 1e-3 * env.max())[0] if env.any() else np.array([0])
    last = int(active[-1]) if len(active) else n - 1
    window = np.arange(max(0, last - int(periods[last])), last + 1)
    t = int(window[np.argmax(score[window])])
    beats = [t]
    while back[t] >= 0:
        t = int(back[t])
        beats.append(t)
    return np.array(beats[::-1], dtype=float) / FRAME_RATE


def beat_grid(notes: list[Note], duration: float) -> np.ndarray:
    """Beat times covering every note: tracked beats, extended at both ends by the local period.

    >>> from kimiwonosete.notes import Note
    >>> notes = [Note(0.5 * i, 0.5 * i + 0.4, 60, 80) for i in range(16)]
    >>> np.round(np.diff(beat_grid(notes, 8.0))[:3], 2)
    array([0.5, 0.5, 0.5])
    """
    if len(notes) < 4:
        start = notes[0].onset if notes else 0.0
        end = max((n.offset for n in notes), default=start) + DEFAULT_PERIOD_S
        return np.arange(start, end + DEFAULT_PERIOD_S, DEFAULT_PERIOD_S)
    env = onset_envelope(notes, duration)
    period = estimate_period(env)
    beats = track_beats(onset_envelope(notes, duration, TRACK_HELD_WEIGHT), local_periods(env, period))
    if len(beats) < 2:
        beats = np.array([notes[0].onset, notes[0].onset + period])
    head, tail = extension(beats, min(n.onset for n in notes), max(n.offset for n in notes))
    return np.concatenate([head, beats, tail])
