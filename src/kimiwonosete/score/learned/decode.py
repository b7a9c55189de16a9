"""The score model's per-note posteriors -> one consistent reading: beats that follow the
rubato, bar lines, the time signature and the staves.

Beats and bars are decoded together by dynamic programming over frames (``FPS``) and positions
in the bar: a beat placed on a chord scores the network's odds of it being a beat (a downbeat
at position 0, another beat elsewhere) against being between beats, each posterior divided by
its prior in the training data; a beat in
silence pays ``SILENT_BEAT``; each interval between beats pays for its distance from the local
beat period (``TIGHTNESS``, per squared octave), the periodicity of the network's beat
activation. A path is decoded for 2, 3 and 4 beats in the bar and the best one kept: its beats,
and its number of beats in the bar where it has 3.

The bar model (``bars``: a stack of convolutions over per-beat rows, which sees whole bars)
then reads the path's beats. Where it reads them as twice or half the notated beats (its level
head, ``LEVEL_MARGIN``), the beats are tracked again at twice or half the local period
(``LEVEL_FACTOR``); on every 3rd ASAP performance the beat level became right in 50 of 89 (46
before), beat F1 0.673 -> 0.691. Where the path is duple, the bar model's odds and the note
model's downbeat odds choose between 2 and 4 beats in the bar (``bars.best_bars``). The same
odds place the bar lines (``bars.bar_positions``), out of step where the grid has a beat too
many or too few, which is then dropped or added (``bars.in_step``): all 266 ASAP performances,
true notes, downbeat F1 0.513 -> 0.521 (position in the bar 0.333 -> 0.340, note F1 0.199 ->
0.203), MAPS 0.780 -> 0.797, against the path's bar lines (or those in step with the first
where the number of beats changed). Given the annotated beats, the two together (choosing
among 2, 3 and 4) read the beats in the bar right in 0.66 of ASAP's performances (every 3rd)
and 0.96 of MAPS' recordings, against 0.62 and 0.81 by the note model's odds alone. Letting it
choose 3 as well cost downbeat F1 for no more time signatures: it turned 3/4 played at another
beat level into 2/4, which the note model's path reads better. Simple or compound is the bar
model's compound head (every 3rd ASAP performance, with the level head: time signature 0.323
-> 0.345 against the rule that off-beat notes fall on thirds, ``meter.is_compound``).

The period head's own beat level was worse than the activation's periodicity (ASAP dev, every
18th performance: beat F1 0.55 at its best tightness against 0.67), and the key and spelling
heads worse than the key profiles (key 0.59 vs 0.72, spelling 0.91 vs 0.95): they are trained
(they help the shared layers), but those answers are left to the rules. The metre head only
chooses among the signatures with the decoded number of beats and subdivision (2/4 or 2/2,
3/4 or 3/8, ...).

The staves are the staff model's (``staves``), each chord's then kept within a hand's reach
(``hands.within_span``). On every 3rd ASAP performance, note by note from the true notes: the
note model's staff head 0.916 (within a hand's reach 0.920), the staff model 0.931 (0.933);
the two models' log odds summed are no better (0.933).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kimiwonosete.notes import Note
from kimiwonosete.score import beats as rules
from kimiwonosete.score import hands
from kimiwonosete.score.beats import extension
from kimiwonosete.score.learned import bars, staves
from kimiwonosete.score.learned.features import chord_ids, note_features
from kimiwonosete.score.learned.net import forward, log_softmax, shipped_weights
from kimiwonosete.score.learned.vocab import METERS
from kimiwonosete.score.model import TimeSignature

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
LEVEL_MARGIN = 0.0  # mean log probability per beat by which another level must beat the grid's (the first tried)
LEVEL_FACTOR = {"double": 2.0, "half": 0.5}  # the period to track again at, for a grid read so


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
          end_frame: int) -> tuple[float, np.ndarray] | None:
    """The best path's score and its beat frames (``m`` beats a bar).

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
    out = [int(t)]
    while back[t, k] >= 0:
        t, k = int(back[t, k]), int((k - 1) % m)
        out.append(t)
    return total, np.array(out[::-1])


def _extend(beats: np.ndarray, first: float, last: float) -> np.ndarray:
    """Beats before the first and after the last tracked one, at the neighbouring period, so
    every note lies inside the grid."""
    if len(beats) < 2:
        start = beats[0] if len(beats) else first
        beats = np.array([start, start + 0.5])
    head, tail = extension(beats, first, last)
    return np.concatenate([head, beats, tail])


def nearest(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The index of the time nearest each beat (``times`` sorted, at least two)."""
    j = np.clip(np.searchsorted(times, beats), 1, len(times) - 1)
    return np.where(np.abs(times[j - 1] - beats) < np.abs(times[j] - beats), j - 1, j)


def _note_odds(beats: np.ndarray, chord_time: np.ndarray, p_beat: np.ndarray, p_down: np.ndarray) -> np.ndarray:
    """The note model's log odds of each beat being a downbeat rather than another beat: those
    of the chord on it (0 where none is within ``SNAP_S``), each posterior over its prior."""
    j = nearest(chord_time, beats)
    pd = np.minimum(p_down, p_beat)[j]
    other = np.maximum(p_beat[j] - pd, EPS) / (PRIOR_BEAT - PRIOR_DOWNBEAT)
    odds = np.log(np.maximum(pd, EPS) / PRIOR_DOWNBEAT) - np.log(other)
    return np.where(np.abs(chord_time[j] - beats) <= SNAP_S, odds, 0.0)


@dataclass
class Evidence:
    """The note model's inputs and outputs (per note), its beat and downbeat probabilities per
    chord, and the local beat period (frames, per frame)."""

    x: np.ndarray
    out: dict[str, np.ndarray]
    chord_time: np.ndarray
    p_beat: np.ndarray
    p_down: np.ndarray
    periods: np.ndarray


def evidence(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, duration: float,
             weights: dict[str, np.ndarray] | None = None) -> Evidence:
    """What the note model hears in notes sorted by onset (times in seconds)."""
    x = note_features(onset, offset, pitch, velocity)
    out = forward(weights or shipped_weights(), x)
    chord = chord_ids(onset)
    n_chords = int(chord[-1]) + 1
    p_beat = np.zeros(n_chords)
    p_down = np.zeros(n_chords)
    np.maximum.at(p_beat, chord, _sigmoid(out["beat"][:, 0]))
    np.maximum.at(p_down, chord, _sigmoid(out["downbeat"][:, 0]))
    chord_time = np.zeros(n_chords)
    np.add.at(chord_time, chord, onset)
    chord_time /= np.bincount(chord, minlength=n_chords)
    n_frames = int(np.ceil(max(duration, float(offset.max())) * FPS)) + 2
    return Evidence(x, out, chord_time, p_beat, p_down, activation_periods(chord_time, p_beat, n_frames))


def beat_grid(ev: Evidence, onset: np.ndarray, offset: np.ndarray, factor: float = 1.0) -> tuple[np.ndarray, int] | None:
    """(beats, beats in the bar) of the best path for any number of beats
    in the bar (its score is the log-likelihood ratio of its beats and bar lines against none)
    around ``factor`` times the local period, its beats moved onto the chords they stand for and
    extended over every note."""
    chord_time, p_beat, p_down = ev.chord_time, ev.p_beat, ev.p_down
    periods = ev.periods * factor
    n_frames = len(periods)
    paths = {}
    for m in BAR_BEATS:
        found = track(chord_time, p_beat, p_down, periods, m, n_frames - 1)
        if found is not None:
            paths[m] = found
    if not paths:
        return None
    m = max(paths, key=lambda k: paths[k][0])
    beats = paths[m][1] / FPS
    j = nearest(chord_time, beats)
    beats = np.where(np.abs(chord_time[j] - beats) <= SNAP_S, chord_time[j], beats)
    keep = np.r_[True, np.diff(beats) > 1e-3]
    return _extend(beats[keep], float(onset.min()), float(offset.max())), m


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
    onset = np.array([n.onset for n in notes])
    offset = np.array([n.offset for n in notes])
    pitch = np.array([n.pitch for n in notes])
    velocity = np.array([n.velocity for n in notes])
    ev = evidence(onset, offset, pitch, velocity, duration, weights)
    grid = beat_grid(ev, onset, offset)
    if grid is None:
        return None
    out, chord_time, p_beat, p_down = ev.out, ev.chord_time, ev.p_beat, ev.p_down
    beats, m = grid

    def read(beats: np.ndarray) -> dict[str, np.ndarray]:
        return bars.bar_posteriors(bars.beat_features(beats, onset, offset, pitch, velocity))

    post = read(beats)
    # The beat level: where the bar model reads the grid as holding twice (or half) the
    # notated beats, the beats are tracked again at twice (half) the period.
    level = post["level"].mean(axis=0)
    other = int(np.argmax(level[1:])) + 1
    if level[other] - level[0] > LEVEL_MARGIN:
        regrid = beat_grid(ev, onset, offset, LEVEL_FACTOR[bars.LEVELS[other]])
        if regrid is not None:
            beats, m = regrid
            post = read(beats)
    # The bar lines: the bar model's odds and the note model's place them, on a duple path
    # choosing 2 or 4 beats in the bar as well (with the bar model's beats in the bar); where
    # they fall out of step, the grid had a beat too many or too few, which is mended.
    down = post["downbeat"] + _note_odds(beats, chord_time, p_beat, p_down)
    if m in DUPLE:
        m, _ = bars.best_bars(down, post["beats"], DUPLE)
    beats, phase = bars.in_step(beats, bars.bar_positions(down, m), m)
    # Simple or compound: the bar model's summed odds of the beats dividing into three; then the
    # signature with that many beats the notes vote for.
    compound = bool(post["compound"].sum() > 0)
    votes = log_softmax(out["meter"]).sum(axis=0)
    group = [i for i, ts in enumerate(METERS)
             if TimeSignature(*ts).beats_per_bar == m and TimeSignature(*ts).compound == compound]
    ts = TimeSignature(*METERS[max(group, key=lambda i: votes[i])]) if group else TimeSignature(m, 4)
    # Staves: the staff model's, each chord's kept within a hand's reach.
    lower = staves.staff_logits(staves.with_sounding(ev.x, onset, offset, pitch))
    return Analysis(beats, ts, phase, hands.within_span(notes, (lower > 0).astype(int).tolist()))
