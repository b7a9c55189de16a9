"""The bar model: where bar lines fall on a beat grid, from what happens on and between beats.

The note model hears each note among its neighbours; bar lines are a pattern over whole bars
(where the bass and the harmony change, which beats carry long notes, where the tempo
breathes). So the bar model reads one row per beat, summarised from the notes, and a stack of
dilated convolutions over the beats (``net.forward``, receptive field 125 beats) gives each
beat's odds of starting a bar and of its bar holding 2, 3 or 4 beats, of the grid holding the
notated beats or twice or half as many (``LEVELS``: it is trained on what the decoder tracks
at the local period, twice it and half it), and of the beats dividing into three (compound).
"""

from __future__ import annotations

import numpy as np

from kimiwonosete.score.learned.net import forward, log_softmax, packaged_weights

WEIGHTS = "bar_tcn.npz"
HEADS = {"downbeat": 1, "beats": 3, "level": 3, "compound": 1}
BAR_BEATS = (2, 3, 4)  # the classes of the ``beats`` head
#: the classes of the ``level`` head: the grid holds the notated beats, twice as many (a beat
#: between each two), or half as many (every other one)
LEVELS = ("beat", "double", "half")
N_FEATURES = 26
REFERENCE_BEAT_S = 0.62  # the absolute tempo feature's zero (the renderer's median beat)
#: where notes between beats fall, as a share of the beat: halves, thirds, quarters (within these)
SUBDIVISIONS = (((0.5,), 0.07), ((1 / 3, 2 / 3), 0.06), ((0.25, 0.75), 0.05))
AT_SHARE, AT_MAX_S = 0.2, 0.07  # a note this close to a beat (share of its period; at most) is on it
LOCAL = 4  # beats either side of the local tempo and density
#: The cost (log odds) of a bar line out of step with the one before, where the grid has a beat
#: too many or too few. From all of ASAP and MAPS' true notes (downbeat F1, offline from the
#: decoded grids; in step throughout: 0.507 / 0.782): 2 -> 0.541 / -, 3 -> - / 0.752, 8 -> 0.524 / 0.777,
#: 14 -> 0.519 / 0.799, 20 -> 0.519 / 0.799; beat F1 within 0.001 from 8 on.
OUT_OF_STEP = 14.0


def _window_sum(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Row i: the sum of rows i + lo .. i + hi - 1 (rows outside count as zero)."""
    n = len(x)
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    a = np.clip(np.arange(n) + lo, 0, n)
    b = np.clip(np.arange(n) + hi, 0, n)
    return c[b] - c[a]


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distance between rows (1 where either is empty)."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-9)
    return np.where((na > 0) & (nb > 0), 1.0 - cos, 1.0)


def beat_features(beats: np.ndarray, onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray,
                  velocity: np.ndarray) -> np.ndarray:
    """``(len(beats), N_FEATURES)`` float32 rows, one per beat (times in seconds, notes sorted by onset).

    A beat's notes are those on it (within ``AT_SHARE`` of its period); its span runs to the
    next beat. Pitches enter only as differences and pitch-class sets, so a transposed piece
    reads the same.

    >>> beats = np.arange(8) * 0.5
    >>> x = beat_features(beats, beats.copy(), beats + 0.4, np.tile([40, 60], 4), np.full(8, 64))
    >>> x.shape, bool(x[0, 0] > 0)
    ((8, 26), True)
    """
    beats = np.asarray(beats, dtype=float)
    n = len(beats)
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    if n < 2 or len(onset) == 0:
        return x
    onset = np.asarray(onset, dtype=float)
    pitch = np.asarray(pitch, dtype=int)
    velocity = np.asarray(velocity, dtype=float)
    period = np.diff(beats, append=2 * beats[-1] - beats[-2])
    period = np.maximum(period, 1e-3)
    tol = np.minimum(AT_SHARE * period, AT_MAX_S)
    starts = np.maximum.accumulate(beats - tol)  # beats closer than their tolerances keep their order
    bounds = np.searchsorted(onset, np.append(starts, beats[-1] + period[-1] - tol[-1]))
    at_hi = np.searchsorted(onset, beats + tol, side="right")
    beat_of = np.searchsorted(starts, onset, side="right") - 1  # each note's beat span (-1: before the grid)
    idx = np.clip(beat_of, 0, n - 1)
    inside = (beat_of >= 0) & (onset < beats[-1] + period[-1])
    on_beat = inside & (onset <= (beats + tol)[idx])
    span_count = np.diff(bounds).astype(float)
    at_count = (at_hi - bounds[:-1]).astype(float)
    dur_beats = np.minimum(offset - onset, 8.0 * period[idx]) / period[idx]
    # Chroma of each beat's span, by how long its notes sound (at most two beats).
    chroma = np.zeros((n, 12))
    np.add.at(chroma, (idx[inside], pitch[inside] % 12), np.minimum(dur_beats[inside], 2.0))
    lo_at = np.full(n, 999)
    hi_at = np.full(n, -999)
    lo_span = np.full(n, 999)
    np.minimum.at(lo_at, idx[on_beat], pitch[on_beat])
    np.maximum.at(hi_at, idx[on_beat], pitch[on_beat])
    np.minimum.at(lo_span, idx[inside], pitch[inside])
    vel_at = np.zeros(n)
    np.maximum.at(vel_at, idx[on_beat], velocity[on_beat])
    dur_at = np.zeros(n)
    np.maximum.at(dur_at, idx[on_beat], dur_beats[on_beat])
    sum_at = np.zeros(n)
    np.add.at(sum_at, idx[on_beat], dur_beats[on_beat])
    has = at_count > 0
    any_span = span_count > 0
    # Reference levels around each beat: pitch, loudness, density, tempo.
    ref_pitch = np.where(any_span, lo_span, np.nan)
    mean_lo = np.array([np.nanmean(ref_pitch[max(0, i - LOCAL): i + LOCAL + 1]) if np.isfinite(
        ref_pitch[max(0, i - LOCAL): i + LOCAL + 1]).any() else 60.0 for i in range(n)])
    vel_sum = np.zeros(n)
    np.add.at(vel_sum, idx[inside], velocity[inside])
    local_v = _window_sum(vel_sum, -LOCAL, LOCAL + 1) / np.maximum(_window_sum(span_count, -LOCAL, LOCAL + 1), 1)
    local_n = _window_sum(span_count, -LOCAL, LOCAL + 1) / (2 * LOCAL + 1)
    log_p = np.log2(period)
    med_p = np.array([np.median(log_p[max(0, i - LOCAL): i + LOCAL + 1]) for i in range(n)])
    x[:, 0] = np.log1p(at_count) / 2.0
    x[:, 1] = np.log1p(span_count) / 3.0
    x[:, 2] = has
    x[:, 3] = np.where(has, (lo_at - mean_lo) / 12.0, 0.0)
    x[:, 4] = np.where(any_span, (lo_span - mean_lo) / 12.0, 0.0)
    x[:, 5] = np.where(has, (hi_at - lo_at) / 24.0, 0.0)
    x[:, 6] = np.where(has, (vel_at - local_v) / 32.0, 0.0)
    x[:, 7] = np.where(has, np.clip(np.log2(np.maximum(dur_at, 1 / 16)), -4, 3) / 3.0, -4 / 3)
    x[:, 8] = np.log1p(sum_at) / 2.0
    x[:, 9] = log_p - med_p
    x[:, 10] = np.diff(log_p, prepend=log_p[0])
    x[:, 11] = _distance(chroma, _window_sum(chroma, -1, 0))
    for j, w in enumerate((2, 3, 4)):
        x[:, 12 + j] = _distance(_window_sum(chroma, 0, w), _window_sum(chroma, -w, 0))
    prev_lo = np.r_[999, lo_at[:-1]]
    x[:, 15] = np.where(has & (prev_lo < 999), np.minimum(np.abs(lo_at - prev_lo), 12) / 12.0, 0.0)
    present = chroma > 0
    x[:, 16] = (present & ~np.r_[np.zeros((1, 12), bool), present[:-1]]).sum(axis=1) / 6.0
    x[:, 17] = at_count / np.maximum(span_count, 1)
    x[:, 18] = np.log2((span_count + 1) / (local_n + 1))
    x[:, 19] = np.where(has, (lo_at <= lo_span) & (lo_at - mean_lo < 0), 0.0)
    # The absolute tempo, and how the notes between beats divide them (halves, thirds,
    # quarters, elsewhere), over the beats around: the beat level and simple-or-compound.
    x[:, 20] = med_p - np.log2(REFERENCE_BEAT_S)
    between = inside & ~on_beat
    frac = (onset - beats[idx]) / period[idx]
    near = np.zeros((len(onset), len(SUBDIVISIONS) + 1), dtype=bool)
    for j, (points, width) in enumerate(SUBDIVISIONS):
        near[:, j] = between & (np.abs(frac[:, None] - np.array(points)[None, :]) < width).any(axis=1)
    near[:, -1] = between & ~near[:, :-1].any(axis=1)
    counts = np.zeros((n, near.shape[1]))
    np.add.at(counts, idx[inside], near[inside].astype(float))
    local = _window_sum(counts, -LOCAL, LOCAL + 1)
    x[:, 21:25] = local / np.maximum(local.sum(axis=1, keepdims=True), 1.0)
    x[:, 25] = np.log1p(local.sum(axis=1)) / 4.0
    return x


def bar_posteriors(x: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per beat: ``downbeat`` the log odds of starting a bar, ``beats`` log probabilities of 2,
    3, 4 beats in its bar, ``level`` of the grid holding the notated beats, twice or half as
    many (``LEVELS``), ``compound`` the log odds of the beats dividing into three."""
    out = forward(weights or packaged_weights(WEIGHTS), x, HEADS)
    return {"downbeat": out["downbeat"][:, 0], "beats": log_softmax(out["beats"]),
            "level": log_softmax(out["level"]), "compound": out["compound"][:, 0]}


def _log_sigmoids(down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log probabilities of each beat starting a bar and not, from its log odds."""
    return -np.logaddexp(0, -down), -np.logaddexp(0, down)


def best_bars(down: np.ndarray, meter: np.ndarray, choices: tuple[int, ...] = BAR_BEATS) -> tuple[int, int]:
    """(beats in the bar among ``choices``, index of a downbeat) that best explain per-beat
    evidence: ``down`` the log odds of each beat starting a bar, ``meter`` (n, 3) log
    probabilities of 2, 3, 4 beats.

    >>> down = np.where(np.arange(12) % 3 == 1, 2.0, -2.0)
    >>> best_bars(down, np.log(np.full((12, 3), 1 / 3)))
    (3, 1)
    """
    n = len(down)
    on, off = _log_sigmoids(down)
    best, choice = -np.inf, (4, 0)
    for c, m in enumerate(BAR_BEATS):
        if m not in choices:
            continue
        for phase in range(min(m, n)):
            hit = (np.arange(n) - phase) % m == 0
            s = float(np.where(hit, on, off).sum() + meter[:, c].sum())
            if s > best:
                best, choice = s, (m, phase)
    return choice


def bar_positions(down: np.ndarray, m: int, out_of_step: float = OUT_OF_STEP) -> np.ndarray:
    """Each beat's position in its bar (0: a downbeat), ``m`` beats a bar, from ``down`` the log
    odds of each beat starting a bar; positions follow one another except where a beat is
    too many (a position repeats) or missing (one is skipped), each at ``out_of_step``.

    >>> down = np.array([3.0, -3, 3, -3, -3, 3, -3, 3, -3])  # a beat too many after the 4th
    >>> bar_positions(down, 2, 2.0).tolist()
    [0, 1, 0, 1, 1, 0, 1, 0, 1]
    """
    on, off = _log_sigmoids(down)
    n = len(down)
    k = np.arange(m)
    emit = np.where(k[None, :] == 0, on[:, None], off[:, None])
    sources = np.stack([(k - 1) % m, (k - 2) % m, k])  # in step, a position skipped, one repeated
    cost = np.array([0.0, out_of_step, out_of_step])[:, None]
    score = emit[0].copy()
    back = np.zeros((n, m), dtype=int)
    for i in range(1, n):
        cand = score[sources] - cost
        j = np.argmax(cand, axis=0)
        back[i] = sources[j, k]
        score = cand[j, k] + emit[i]
    pos = np.zeros(n, dtype=int)
    if n:
        pos[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        pos[i - 1] = back[i, pos[i]]
    return pos


def in_step(beats: np.ndarray, positions: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """(beats, index of a downbeat) with every bar ``m`` beats long: a beat whose position
    repeats the one before is dropped, one halfway is added where a position is skipped.

    >>> in_step(np.arange(6.0), np.array([1, 2, 0, 2, 0, 1]), 3)
    (array([0. , 1. , 2. , 2.5, 3. , 4. , 5. ]), 2)
    """
    if not len(beats):
        return beats, 0
    out, pos = [float(beats[0])], [int(positions[0])]
    for b, p in zip(beats[1:], positions[1:]):
        step = (int(p) - pos[-1]) % m
        if step == 0:
            continue
        if step == 2:
            out.append((out[-1] + float(b)) / 2)
            pos.append((pos[-1] + 1) % m)
        out.append(float(b))
        pos.append(int(p))
    return np.array(out), int((m - pos[0]) % m)
