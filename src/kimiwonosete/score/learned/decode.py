"""The score model's per-note posteriors -> one consistent reading: beats that follow the
rubato, bar lines, the time signature and the staves.

Beats and bars are decoded together by dynamic programming over frames (``FPS``) and positions
in the bar: a beat placed on a chord scores the network's odds of it being a beat (a downbeat
at position 0, another beat elsewhere) against being between beats, each posterior divided by
its prior in the training data; a beat in
silence pays ``SILENT_BEAT``; each interval between beats pays for its distance from the local
beat period (``TIGHTNESS``, per squared octave), the periodicity of the network's beat
activation. A path is decoded for 2, 3 and 4 beats in the bar and the best one kept: its beats, and where
it has 3 beats in the bar its bar lines.

Where the path is duple, the bar model (``bars``: a stack of convolutions over per-beat rows,
which sees whole bars) and the note model's downbeat odds choose between 2 and 4 beats in the
bar (``bars.best_bars``), and the bar lines where that differs from the path. Given the
annotated beats, the two together (choosing among 2, 3 and 4) read the beats in the bar right
in 0.66 of ASAP's performances (every 3rd) and 0.96 of MAPS' recordings, against 0.62 and 0.81
by the note model's odds alone, and bar lines at downbeat F1 0.83 and 0.94 against 0.80 and
0.89. On the decoded beats (all 266) it raised the time signature from 0.270 to 0.325 (4/4 read
as 2/4: 50 -> 31 performances) at downbeat F1 0.517 -> 0.513. Letting it choose 3 as well cost
downbeat F1 (0.505) for no more time signatures (0.327): it turned 3/4 played at another beat
level into 2/4 (11 performances), which the note model's path reads better.

The period head's own beat level was worse than the activation's periodicity (ASAP dev, every
18th performance: beat F1 0.55 at its best tightness against 0.67), and the key and spelling
heads worse than the key profiles (key 0.59 vs 0.72, spelling 0.91 vs 0.95): they are trained
(they help the shared layers), but those answers are left to the rules. The metre head only
chooses among the signatures with the decoded number of beats and subdivision (2/4 or 2/2,
3/4 or 3/8, ...). The staves are the staff head's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kimiwonosete.notes import Note
from kimiwonosete.score import beats as rules
from kimiwonosete.score.beats import extension
from kimiwonosete.score.learned import bars
from kimiwonosete.score.learned.features import chord_ids, note_features
from kimiwonosete.score.learned.net import forward, log_softmax, shipped_weights
from kimiwonosete.score.learned.vocab import METERS
from kimiwonosete.score.meter import is_compound
from kimiwonosete.score.model import TimeSignature
from kimiwonosete.score.quantize import beat_positions

FPS = 50.0  # decoding frames per second (a 20 ms grid, well inside the 70 ms beat tolerance)
EPS = 1e-4
SILENT_BEAT = -5.0  # a beat where nothing starts (ASAP dev, every 9th performance: -1.5, -3, -5 gave beat F1 0.666, 0.680, 0.687)
TIGHTNESS = 20.0  # per squared octave between a beat interval and the local period (12, 20, 30: 0.678, 0.680, 0.666)
MIN_RATIO, MAX_RATIO = 0.6, 1.6  # beat intervals considered, as multiples of the local period
BLOCK = 64  # frames decoded at once, at most
SNAP_S = 0.03  # a decoded beat this close to a chord moves onto it
BAR_BEATS = (2, 3, 4)  # beats in a bar, as the annotations count them
#: Shares of chords on a beat and on a downbeat in the training corpus (lieder 0.415 / 0.155,
#: mutopia 0.355 / 0.128, cpm 0.343 / 0.121; weighted by chords). Rewards divide the network's
#: posteriors by them. Against raw posteriors, on all 266 ASAP performances (the weights trained
#: before the renderer's downbeats were made as soft as ASAP's): downbeat F1 0.398 -> 0.449,
#: position in the bar 0.224 -> 0.256, note F1 0.119 -> 0.133, beat F1 0.651 -> 0.653, but time
#: signature 0.355 -> 0.276: raw posteriors read 3/4 and 2/4 as 4/4 (25 and 20 performances),
#: these read 4/4 as 2/4 (60): bar lines fall in place more often, at twice the composer's rate.
PRIOR_BEAT, PRIOR_DOWNBEAT = 0.39, 0.14
DUPLE = (2, 4)  # the numbers of beats in the bar the bar model chooses between (see above)


@dataclass
class Analysis:
    """What the decoder reads from the notes; ``phase`` is the index of a downbeat in ``beats``
    (modulo the beats per bar), as :func:`kimiwonosete.score.meter.choose_meter` gives it."""

    beats: np.ndarray
    time_signature: TimeSignature
    phase: int
    staff: list[int]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def activation_periods(chord_time: np.ndarray, p_beat: np.ndarray, n_frames: int) -> np.ndarray:
    """Beat period (frames) at every frame from the periodicity of the beat activation: the
    heuristic tracker's tempo curve (autocorrelation, smoothed by Viterbi), on the network's
    beat probabilities instead of raw onsets, so off-beat notes do not pull it to their level."""
    n = int(np.ceil(n_frames / FPS * rules.FRAME_RATE)) + 1
    env = np.zeros(n)
    np.add.at(env, np.clip(np.round(chord_time * rules.FRAME_RATE).astype(int), 0, n - 1), p_beat)
    env = rules.smooth(env)
    per = rules.local_periods(env, rules.estimate_period(env)) / rules.FRAME_RATE
    return np.interp(np.arange(n_frames) / FPS, np.arange(n) / rules.FRAME_RATE, per) * FPS


def track(onsets: np.ndarray, p_beat: np.ndarray, p_down: np.ndarray, periods: np.ndarray, m: int,
          end_frame: int) -> tuple[float, np.ndarray, np.ndarray] | None:
    """The best path's score, its beat frames and their positions in the bar (0 = downbeat).

    ``onsets``, ``p_beat``, ``p_down``: one entry per chord; ``periods``: frames, per frame.
    """
    n = len(periods)
    frames = np.clip(np.round(onsets * FPS).astype(int), 0, n - 1)
    pb = np.zeros(n)
    pd = np.zeros(n)
    has = np.zeros(n, dtype=bool)
    np.maximum.at(pb, frames, p_beat)
    np.maximum.at(pd, frames, np.minimum(p_down, p_beat))
    has[frames] = True
    # Posteriors over priors (scaled likelihoods), so that paths with more or fewer beats and
    # bar lines compare fairly.
    against = np.log(np.maximum(1 - pb, EPS) / (1 - PRIOR_BEAT))
    reward = np.empty((n, m))
    reward[:, 0] = np.where(has, np.log(np.maximum(pd, EPS) / PRIOR_DOWNBEAT) - against, SILENT_BEAT)
    reward[:, 1:] = np.where(has, np.log(np.maximum(pb - pd, EPS) / (PRIOR_BEAT - PRIOR_DOWNBEAT)) - against,
                             SILENT_BEAT)[:, None]
    first, last = int(frames.min()), int(frames.max())
    score = np.full((n, m), -np.inf)
    back = np.full((n, m), -1, dtype=np.int64)
    start_until = first + int(np.ceil(periods[first]))
    shift = (np.arange(m) - 1) % m  # a beat at position k follows one at k - 1
    stop = min(n, end_frame + 1)
    t = 0
    # Frames at most MIN_RATIO periods apart cannot precede one another: such a block is
    # decoded at once, from the frames before it.
    while t < stop:
        size = max(1, min(BLOCK, int(MIN_RATIO * periods[t : t + BLOCK].min())))
        block = np.arange(t, min(t + size, stop))
        p = periods[block]
        lo = block - np.ceil(MAX_RATIO * p).astype(int)
        hi = block - np.floor(MIN_RATIO * p).astype(int)
        width = int((hi - lo).max()) + 1
        prev = lo[:, None] + np.arange(width)[None, :]  # (block, width)
        valid = (prev <= hi[:, None]) & (prev >= 0)
        safe = np.clip(prev, 0, n - 1)
        dist = np.maximum(block[:, None] - safe, 1)
        cost = TIGHTNESS * np.log2(dist / p[:, None]) ** 2
        cand = score[safe][:, :, shift] - cost[:, :, None]  # (block, width, position of this beat)
        cand[~valid] = -np.inf
        j = np.argmax(cand, axis=1)  # (block, m)
        best = np.take_along_axis(cand, j[:, None, :], axis=1)[:, 0, :]
        src = np.take_along_axis(safe, j, axis=1)
        src = np.where(np.isfinite(best), src, -1)
        fresh = (block <= start_until)[:, None] & ~(best >= 0)
        best = np.where(fresh, 0.0, best)
        back[block] = np.where(fresh, -1, src)
        score[block] = best + reward[block]
        t = int(block[-1]) + 1
    stop_lo = max(0, last - int(np.ceil(periods[last])))
    window = score[stop_lo : min(n, end_frame + 1)]
    if not np.isfinite(window).any():
        return None
    t, k = np.unravel_index(int(np.argmax(window)), window.shape)
    total = float(window[t, k])
    t += stop_lo
    out_t, out_k = [int(t)], [int(k)]
    while back[t, k] >= 0:
        t, k = int(back[t, k]), int((k - 1) % m)
        out_t.append(t)
        out_k.append(k)
    return total, np.array(out_t[::-1]), np.array(out_k[::-1])


def _extend(beats: np.ndarray, positions: np.ndarray, first: float, last: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Beats before the first and after the last tracked one, at the neighbouring period, so
    every note lies inside the grid."""
    if len(beats) < 2:
        p = 0.5
        beats = np.array([beats[0] if len(beats) else first, (beats[0] if len(beats) else first) + p])
        positions = np.array([positions[0] if len(positions) else 0, ((positions[0] if len(positions) else 0) + 1) % m])
    head, tail = extension(beats, first, last)
    pos = np.concatenate([(positions[0] - np.arange(len(head), 0, -1)) % m, positions,
                          (positions[-1] + np.arange(1, len(tail) + 1)) % m])
    return np.concatenate([head, beats, tail]), pos


def _nearest_chord(chord_time: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The index of the chord nearest each beat (``chord_time`` sorted, at least two chords)."""
    j = np.clip(np.searchsorted(chord_time, beats), 1, len(chord_time) - 1)
    return np.where(np.abs(chord_time[j - 1] - beats) < np.abs(chord_time[j] - beats), j - 1, j)


def _note_odds(beats: np.ndarray, chord_time: np.ndarray, p_beat: np.ndarray, p_down: np.ndarray) -> np.ndarray:
    """The note model's log odds of each beat being a downbeat rather than another beat: those
    of the chord on it (0 where none is within ``SNAP_S``), each posterior over its prior."""
    nearest = _nearest_chord(chord_time, beats)
    pd = np.minimum(p_down, p_beat)[nearest]
    other = np.maximum(p_beat[nearest] - pd, EPS) / (PRIOR_BEAT - PRIOR_DOWNBEAT)
    odds = np.log(np.maximum(pd, EPS) / PRIOR_DOWNBEAT) - np.log(other)
    return np.where(np.abs(chord_time[nearest] - beats) <= SNAP_S, odds, 0.0)


def analyse(notes: list[Note], duration: float, weights: dict[str, np.ndarray] | None = None) -> Analysis | None:
    """Beats, metre and staves for notes sorted by onset (None: too few notes).

    >>> from kimiwonosete.notes import Note
    >>> waltz = [Note(0.5 * i, 0.5 * i + 0.45, 43 if i % 3 == 0 else 67, 90 if i % 3 == 0 else 60) for i in range(48)]
    >>> a = analyse(waltz, 24.0)
    >>> str(a.time_signature)
    '3/4'
    """
    if len(notes) < 4:
        return None
    weights = weights or shipped_weights()
    onset = np.array([n.onset for n in notes])
    offset = np.array([n.offset for n in notes])
    pitch = np.array([n.pitch for n in notes])
    velocity = np.array([n.velocity for n in notes])
    out = forward(weights, note_features(onset, offset, pitch, velocity))
    # Beats and bars, chord by chord.
    chord = chord_ids(onset)
    n_chords = int(chord[-1]) + 1
    p_beat = np.zeros(n_chords)
    p_down = np.zeros(n_chords)
    np.maximum.at(p_beat, chord, _sigmoid(out["beat"][:, 0]))
    np.maximum.at(p_down, chord, _sigmoid(out["downbeat"][:, 0]))
    chord_time = np.zeros(n_chords)
    np.add.at(chord_time, chord, onset)
    chord_time /= np.bincount(chord, minlength=n_chords)
    end = max(duration, float(offset.max()))
    n_frames = int(np.ceil(end * FPS)) + 2
    periods = activation_periods(chord_time, p_beat, n_frames)
    # Beats: a path is decoded for each number of beats in the bar and the best one's kept (its
    # score is the log-likelihood ratio of its beats and bar lines against none).
    paths = {}
    for m in BAR_BEATS:
        found = track(chord_time, p_beat, p_down, periods, m, n_frames - 1)
        if found is not None:
            paths[m] = found
    if not paths:
        return None
    m = max(paths, key=lambda k: paths[k][0])
    _, frames, positions = paths[m]
    votes = log_softmax(out["meter"]).sum(axis=0)
    beats = frames / FPS
    # Onto the chords they stand for.
    nearest = _nearest_chord(chord_time, beats)
    close = np.abs(chord_time[nearest] - beats) <= SNAP_S
    beats = np.where(close, chord_time[nearest], beats)
    keep = np.r_[True, np.diff(beats) > 1e-3]
    beats, positions = _extend(beats[keep], positions[keep], float(onset.min()), float(offset.max()), m)
    phase = int(np.nonzero(positions == 0)[0][0] % m) if (positions == 0).any() else 0
    if m in DUPLE:
        # 2 or 4 beats in the bar: the bar model's odds and the note model's, and the bar
        # model's beats in the bar; the path's bar lines stay where the number stays.
        down, meter = bars.bar_posteriors(bars.beat_features(beats, onset, offset, pitch, velocity))
        m_bars, phase_bars = bars.best_bars(down + _note_odds(beats, chord_time, p_beat, p_down), meter, DUPLE)
        if m_bars != m:
            m, phase = m_bars, phase_bars
    # Simple or compound: whether the notes between the beats fall on thirds of them; then the
    # signature with that many beats the notes vote for.
    compound = is_compound(beat_positions(onset, beats))
    group = [i for i, ts in enumerate(METERS)
             if TimeSignature(*ts).beats_per_bar == m and TimeSignature(*ts).compound == compound]
    ts = TimeSignature(*METERS[max(group, key=lambda i: votes[i])]) if group else TimeSignature(m, 4)
    return Analysis(beats, ts, phase, (out["staff"][:, 0] > 0).astype(int).tolist())
