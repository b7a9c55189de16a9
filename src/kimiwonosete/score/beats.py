"""Tempo and beats from note onsets: an onset envelope, a tempo by autocorrelation, and
dynamic-programming beat tracking (Ellis 2007) that lets the beat follow gentle rubato."""

from __future__ import annotations

import numpy as np

from kimiwonosete.notes import Note

FRAME_RATE = 100.0  # envelope frames per second
SMOOTH_S = 0.02
MIN_BPM, MAX_BPM = 40.0, 220.0
PRIOR_BPM, PRIOR_OCTAVES = 100.0, 0.6
TIGHTNESS = 100.0
DEFAULT_PERIOD_S = 0.6


def onset_envelope(notes: list[Note], duration: float) -> np.ndarray:
    """Onset strength at ``FRAME_RATE``: each onset adds its loudness, low notes a little more."""
    n = int(np.ceil(duration * FRAME_RATE)) + 1
    env = np.zeros(n)
    for note in notes:
        i = min(max(int(round(note.onset * FRAME_RATE)), 0), n - 1)
        env[i] += (note.velocity / 127.0) * (1.0 + 0.5 * (note.pitch < 60))
    width = SMOOTH_S * FRAME_RATE
    k = np.arange(-int(3 * width), int(3 * width) + 1)
    return np.convolve(env, np.exp(-0.5 * (k / width) ** 2), mode="same")


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


def track_beats(env: np.ndarray, period_s: float) -> np.ndarray:
    """Beat times (s) maximising onset strength on beats plus regular spacing (Ellis' DP)."""
    period = period_s * FRAME_RATE
    n = len(env)
    norm = env / (env.std() + 1e-9)
    score = norm.copy()
    back = np.full(n, -1)
    lo, hi = int(round(period / 2)), int(round(2 * period))
    for t in range(lo, n):
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
    window = np.arange(max(0, last - int(period)), last + 1)
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
    beats = track_beats(env, period)
    if len(beats) < 2:
        beats = np.array([notes[0].onset, notes[0].onset + period])
    first = min(n.onset for n in notes)
    last = max(n.offset for n in notes)
    head_p = beats[1] - beats[0]
    tail_p = beats[-1] - beats[-2]
    n_head = max(0, int(np.ceil((beats[0] - first) / head_p + 0.1)))
    n_tail = max(0, int(np.ceil((last - beats[-1]) / tail_p)) + 1)
    head = beats[0] - head_p * np.arange(n_head, 0, -1)
    tail = beats[-1] + tail_p * np.arange(1, n_tail + 1)
    return np.concatenate([head, beats, tail])
