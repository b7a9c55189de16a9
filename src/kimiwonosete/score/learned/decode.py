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

The beat level is chosen among paths tracked around several multiples of the activation's
period (``LEVELS_TRIED``, each with its own tempo curve): the bar model (``bars``: a stack of
convolutions over per-beat rows, which sees whole bars) reads each path's beats, and the path it
reads most as holding the notated beats is kept (its level head; the activation's own level by
``OWN_LEVEL_MARGIN``). Against tracking again at twice or half the period only where the first
path read so: all 266 ASAP performances, true notes, beat F1 0.689 -> 0.694, downbeat 0.521 ->
0.525; MAPS beat 0.781 -> 0.868, downbeat 0.797 -> 0.865, time signature 0.573 -> 0.648, note F1
0.443 -> 0.577. Where the path is duple, the bar model's odds and the note
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
#: multiples of the activation's period tracked (the beat level the bar model then chooses), and
#: the beat periods (s) a level may have (ASAP's annotated beats: 10-90 % 0.32-1.44 s)
LEVELS_TRIED = (0.25, 0.5, 1.0, 2.0, 4.0)
MIN_PERIOD_S, MAX_PERIOD_S = 0.12, 3.0
#: the mean log probability per beat by which another level's grid must read more as the
#: notated beats than the activation's own. All of ASAP and MAPS (true notes, offline from the
#: decoded grids), beat / downbeat F1: 0 -> 0.687 / 0.523 and 0.869 / 0.863; 0.1 to 0.25 within
#: 0.003 of 0.692 / 0.525 and 0.868 / 0.868; 0.3 -> 0.691 / 0.524 and 0.856 / 0.852. The upper end
#: of that plateau keeps a plain 4/4 at 100 quarters a minute in quarters (tests/score/test_build:
#: its half-note grid reads 0.20 more as the beats).
OWN_LEVEL_MARGIN = 0.25


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


def activation_envelope(chord_time: np.ndarray, p_beat: np.ndarray, n_frames: int) -> np.ndarray:
    """The network's beat probabilities as an envelope at the heuristic tracker's frame rate, so
    its periodicity is that of the beats, not of the off-beat notes."""
    n = int(np.ceil(n_frames / FPS * rules.FRAME_RATE)) + 1
    env = np.zeros(n)
    np.add.at(env, np.clip(np.round(chord_time * rules.FRAME_RATE).astype(int), 0, n - 1), p_beat)
    return rules.smooth(env)


def local_periods(ev: Evidence, factor: float = 1.0) -> np.ndarray:
    """Beat period (frames) at every frame: the heuristic tracker's tempo curve (autocorrelation
    peaks near ``factor`` times the activation's period, smoothed by Viterbi) over the beat
    activation. Searched afresh around each level, not scaled from another level's curve: on
    MAPS (true notes) the grids at twice and half the period then gave beat F1 0.781 -> 0.805."""
    n = len(ev.envelope)
    per = rules.local_periods(ev.envelope, ev.period_s * factor) / rules.FRAME_RATE
    return np.interp(np.arange(ev.n_frames) / FPS, np.arange(n) / rules.FRAME_RATE, per) * FPS


def track(onsets: np.ndarray, p_beat: np.ndarray, p_down: np.ndarray, periods: np.ndarray,
          end_frame: int, bar_beats: tuple[int, ...] = BAR_BEATS) -> dict[int, tuple[float, np.ndarray]]:
    """For each number of beats in the bar in ``bar_beats``, the best path's score and its beat
    frames (none where no path is found). The paths are decoded side by side, one state per
    position in the bar of each: one pass over the frames serves them all.

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
    # States: the positions in the bar of each path; a beat at position k follows one at k - 1.
    group = np.concatenate([np.full(m, i) for i, m in enumerate(bar_beats)])
    offset = np.cumsum((0,) + bar_beats[:-1])  # each path's first state
    pos = np.arange(len(group)) - offset[group]
    shift = offset[group] + (pos - 1) % np.array(bar_beats)[group]
    # Posteriors over priors (scaled likelihoods), so that paths with more or fewer beats and
    # bar lines compare fairly.
    against = np.log(np.maximum(1 - pb, EPS) / (1 - PRIOR_BEAT))
    on_down = np.where(has, np.log(np.maximum(pd, EPS) / PRIOR_DOWNBEAT) - against, SILENT_BEAT)
    on_beat = np.where(has, np.log(np.maximum(pb - pd, EPS) / (PRIOR_BEAT - PRIOR_DOWNBEAT)) - against, SILENT_BEAT)
    reward = np.where(pos[None, :] == 0, on_down[:, None], on_beat[:, None])
    first, last = int(frames.min()), int(frames.max())
    score = np.full((n, len(group)), -np.inf)
    back = np.full((n, len(group)), -1, dtype=np.int64)
    start_until = first + int(np.ceil(periods[first]))
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
        cand = score[safe][:, :, shift] - cost[:, :, None]  # (block, width, state of this beat)
        cand[~valid] = -np.inf
        j = np.argmax(cand, axis=1)  # (block, states)
        best = np.take_along_axis(cand, j[:, None, :], axis=1)[:, 0, :]
        src = np.take_along_axis(safe, j, axis=1)
        src = np.where(np.isfinite(best), src, -1)
        fresh = (block <= start_until)[:, None] & ~(best >= 0)
        best = np.where(fresh, 0.0, best)
        back[block] = np.where(fresh, -1, src)
        score[block] = best + reward[block]
        t = int(block[-1]) + 1
    stop_lo = max(0, last - int(np.ceil(periods[last])))
    paths = {}
    for i, m in enumerate(bar_beats):
        window = score[stop_lo : min(n, end_frame + 1), group == i]
        if not np.isfinite(window).any():
            continue
        t, k = np.unravel_index(int(np.argmax(window)), window.shape)
        total = float(window[t, k])
        t += stop_lo
        state = int(offset[i] + k)
        out = [int(t)]
        while back[t, state] >= 0:
            t, state = int(back[t, state]), int(shift[state])
            out.append(t)
        paths[m] = (total, np.array(out[::-1]))
    return paths


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
    chord, the beat activation's envelope (``activation_envelope``), its period (s) and the
    number of decoding frames."""

    x: np.ndarray
    out: dict[str, np.ndarray]
    chord_time: np.ndarray
    p_beat: np.ndarray
    p_down: np.ndarray
    envelope: np.ndarray
    period_s: float
    n_frames: int


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
    env = activation_envelope(chord_time, p_beat, n_frames)
    return Evidence(x, out, chord_time, p_beat, p_down, env, rules.estimate_period(env), n_frames)


def beat_grid(ev: Evidence, onset: np.ndarray, offset: np.ndarray, factor: float = 1.0) -> tuple[np.ndarray, int] | None:
    """(beats, beats in the bar) of the best path for any number of beats
    in the bar (its score is the log-likelihood ratio of its beats and bar lines against none)
    around ``factor`` times the activation's period (``local_periods``), its beats moved onto the chords they stand for and
    extended over every note."""
    chord_time, p_beat, p_down = ev.chord_time, ev.p_beat, ev.p_down
    paths = track(chord_time, p_beat, p_down, local_periods(ev, factor), ev.n_frames - 1)
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
    # The beat level: the beats are tracked around several multiples of the activation's
    # period, and the grid the bar model reads most as holding the notated beats is kept.
    best = None
    for factor in LEVELS_TRIED:
        if not MIN_PERIOD_S <= factor * ev.period_s <= MAX_PERIOD_S:
            continue
        grid = beat_grid(ev, onset, offset, factor)
        if grid is None:
            continue
        post = bars.bar_posteriors(bars.beat_features(grid[0], onset, offset, pitch, velocity))
        at_beat = float(post["level"][:, bars.LEVELS.index("beat")].mean()) + (OWN_LEVEL_MARGIN if factor == 1.0 else 0.0)
        if best is None or at_beat > best[0]:
            best = (at_beat, grid, post)
    if best is None:
        return None
    _, (beats, m), post = best
    out, chord_time, p_beat, p_down = ev.out, ev.chord_time, ev.p_beat, ev.p_down
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
