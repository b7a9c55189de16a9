"""A score as a human might play it: seeded, deterministic performances with per-note targets.

Timing is what naive jitter gets wrong: a pianist's tempo drifts over the piece, swells and
relaxes over phrases, slows at their ends (and holds fermatas), and chords are spread a little
with the melody ahead. Each of those is drawn here per piece from ranges checked against the
piano-midi.de performances (``training/check_render.py``). Then articulation (and, in some
pieces, releases lengthened by the pedal, as MAPS' note truth has them), velocities accenting
metre and melody, transcription-like dropped and added notes, and a transposition.

A ``timed`` piece (cpm: already a performance) keeps its own timing, scaled, with the same
note-level treatment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kimiwonosete.score.learned.vocab import UNKNOWN, period_class, phase_class, spell_class
from training.corpus import KEY_UNKNOWN, Piece


@dataclass
class Rendered:
    """A performance (notes sorted by onset) and its targets, one row per note."""

    onset: np.ndarray
    offset: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    targets: dict[str, np.ndarray]


#: the base tempo's distribution (see beat_times)
BEAT_MEDIAN_S, BEAT_SPREAD_OCTAVES = 0.62, 0.7
MIN_BEAT_S, MAX_BEAT_S = 0.25, 2.0
MIN_GAP_S, MAX_GAP_S = 0.07, 0.45
#: metric accents (velocity units; the downbeat's drawn either way) and note-to-note velocity
#: noise, fitted to ASAP's statistics (see render; ``training.check_render`` prints them side by side)
BEAT_ACCENT, DOWNBEAT_ACCENT, VELOCITY_NOISE = 4.0, 1.0, 10.0
TARGETS = ("beat", "downbeat", "period", "meter", "staff", "key", "spell", "phase")


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, width: float) -> np.ndarray:
    """Gaussian noise of std ``scale`` smoothed over about ``width`` samples.

    Scaled by the std that smoothing gives white noise, not by the sample's own: over a piece
    shorter than ``width`` the sample is nearly constant, and dividing by its tiny std made the
    drift of a fifth of the pieces up to 18 times ``scale`` (a Satie song of 36 quarters played
    in 10,245 s).
    """
    if n == 0:
        return np.zeros(0)
    k = max(1, int(width))
    raw = rng.normal(0, 1, n + 2 * k)
    kernel = np.hanning(2 * k + 1)
    kernel /= kernel.sum()
    out = np.convolve(raw, kernel, mode="same")[k : k + n]
    return scale * out / np.sqrt(np.sum(kernel**2))


def beat_times(piece: Piece, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A tempo curve for a score piece: (grid positions in quarters, their times in seconds)."""
    end = float(np.max(piece.onset + piece.duration))
    step = max(float(np.min(piece.beat_len)), 0.25)  # a grid at least as fine as every beat
    grid = np.arange(0.0, end + 4 * step, step)
    n = len(grid)
    # Base tempo: a beat period drawn around what pianists play (ASAP's beats: median 0.63 s,
    # 10-90 % 0.32-1.44 s), redrawn until the piece's usual gap between chords is played as
    # fast as in real performances (ASAP: median 0.14 s, 10-90 % 0.095-0.24 s; here 0.07-0.45 s).
    chords = np.unique(np.round(piece.onset, 4))
    gaps = np.diff(chords)
    beat_q = float(np.median(piece.beat_len))
    gap_beats = (float(np.median(gaps)) if len(gaps) else beat_q) / beat_q
    for _ in range(50):
        beat_s = BEAT_MEDIAN_S * 2.0 ** rng.normal(0, BEAT_SPREAD_OCTAVES)
        if MIN_BEAT_S <= beat_s <= MAX_BEAT_S and MIN_GAP_S <= beat_s * gap_beats <= MAX_GAP_S:
            break
    else:
        beat_s = float(np.clip(np.sqrt(MIN_GAP_S * MAX_GAP_S) / max(gap_beats, 1e-3), MIN_BEAT_S, MAX_BEAT_S))
    q_s = beat_s / beat_q
    per_bar = max(1, int(round(4 * beat_q / step)))
    log_p = np.zeros(n)
    log_p += _smooth_noise(rng, n, rng.uniform(0.03, 0.12), 16 * per_bar)  # drift over the piece
    phrase_bars = int(rng.choice([2, 4, 4, 8]))
    phrase = phrase_bars * per_bar
    x = (np.arange(n) % phrase) / phrase
    arc = rng.uniform(0.04, 0.2)
    log_p += arc * ((2 * x - 1) ** 2 - 1 / 3)  # faster inside a phrase, broader at its ends
    log_p += rng.normal(0, rng.uniform(0.01, 0.05), n)  # beat to beat
    # Ritardando into the last bars, and at some phrase ends a held (fermata) beat.
    rit = min(n, max(1, int(rng.uniform(1, 4) * per_bar)))
    log_p[-rit:] += np.linspace(0, rng.uniform(0.1, 0.5), rit)
    ends = np.arange(phrase - 1, n, phrase)
    held = ends[rng.random(len(ends)) < rng.uniform(0, 0.25)]
    log_p[held] += np.log(rng.uniform(1.5, 3.0, len(held)))
    seconds = np.concatenate([[0.0], np.cumsum(q_s * step * np.exp(log_p[:-1]))])
    return grid, seconds


def transpose(piece: Piece, semitones: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch, tpc, key) moved by ``semitones``, spelled so the new key has at most 6 accidentals."""
    shift = (semitones * 7) % 12
    known = piece.key[piece.key != KEY_UNKNOWN]
    ref = int(np.median(known)) if len(known) else 0
    options = [shift - 12, shift, shift + 12]
    shift = min(options, key=lambda s: (abs(ref + s) > 6, abs(ref + s)))
    pitch = piece.pitch.astype(int) + semitones
    tpc = np.where(piece.tpc == UNKNOWN, UNKNOWN, piece.tpc.astype(int) + shift)
    key = np.where(piece.key == KEY_UNKNOWN, KEY_UNKNOWN, piece.key.astype(int) + shift)
    return pitch, tpc, key


def render(piece: Piece, seed: int) -> Rendered:
    """One performance of ``piece``: the same seed gives the same notes.

    >>> from training.corpus import Piece
    >>> n = 32
    >>> p = Piece("t", "test", False, np.arange(n) * 0.5, np.full(n, 0.5), np.full(n, 60, np.int16),
    ...           np.full(n, -1, np.int16), np.zeros(n, np.int8), np.zeros(n, np.int8), np.zeros(n, np.int8),
    ...           np.full(n, 2, np.int8), np.arange(n) % 2 == 0, np.arange(n) % 8 == 0, np.ones(n), (np.arange(n) % 2) / 2,
    ...           np.arange(n) // 8)
    >>> a, b = render(p, 1), render(p, 1)
    >>> bool(np.array_equal(a.onset, b.onset)), bool(np.all(np.diff(a.onset) > 0))
    (True, True)
    """
    rng = np.random.default_rng(seed)
    semitones = int(rng.integers(-5, 7)) if rng.random() < 0.6 else 0
    pitch, tpc, key = transpose(piece, semitones)
    while pitch.max() > 108:
        pitch, tpc, key = pitch - 12, tpc, key
    while pitch.min() < 21:
        pitch = pitch + 12
    n = len(pitch)
    if piece.timed:
        scale = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
        onset = piece.onset * scale
        offset = (piece.onset + piece.duration) * scale
        beat_s = piece.beat_len * scale
    else:
        grid, seconds = beat_times(piece, rng)
        onset = np.interp(piece.onset, grid, seconds)
        offset = np.interp(piece.onset + piece.duration, grid, seconds)
        # The beat's period where the note is played, from the tempo curve.
        beat_s = np.interp(piece.onset + piece.beat_len, grid, seconds) - onset
    # Chords spread: a chord-level shift, a note-level spread, the melody ahead.
    chord = np.unique(np.round(piece.onset, 5), return_inverse=True)[1]
    onset = onset + rng.normal(0, rng.uniform(0.003, 0.02), chord.max() + 1)[chord]
    onset = onset + rng.normal(0, rng.uniform(0.002, 0.012), n)
    top = np.zeros(n, dtype=bool)
    order = np.lexsort((pitch, chord))
    last = np.r_[chord[order][1:] != chord[order][:-1], True]
    top[order[last]] = True
    top &= piece.staff == 0
    onset[top] -= rng.uniform(0, 0.025)
    # Articulation, and releases held by the pedal in some pieces.
    ratio = np.exp(rng.normal(np.log(rng.uniform(0.55, 1.0)), 0.2, n))
    length = np.maximum((offset - onset) * ratio, 0.03)
    if not piece.timed or rng.random() < 0.5:
        offset = onset + length
    if rng.random() < 0.4:
        change = rng.uniform(1.0, 3.0)  # pedal changes every ~1-3 s
        release = (np.floor(onset / change) + 1) * change + rng.uniform(0, 0.1)
        held = rng.random(n) < 0.8
        offset = np.where(held, np.maximum(offset, release), offset)
    # Velocities: a dynamic curve with the melody ahead and faint metric accents, or (half the cpm
    # renderings) the performance's own. Pianists hardly accent bar lines: on ASAP (every 3rd
    # performance) a note on a downbeat is 0.1 above the local mean velocity, on another beat
    # 0.6 above, off the beat 0.45 below (velocity sd 15). piano-midi.de's hand-made velocities
    # put downbeats 3.9 above, and so did these accents before (3.3): the network learnt to hear
    # bar lines by loudness (fed constant velocities, it found ASAP's downbeats better).
    if piece.timed and rng.random() < 0.5:
        velocity = piece.velocity + rng.normal(0, 4, n)
    else:
        base = rng.uniform(45, 85) + _smooth_noise(rng, n, rng.uniform(3, 12), 64)
        velocity = base + rng.uniform(0, BEAT_ACCENT) * piece.beat + rng.uniform(-1, 1) * DOWNBEAT_ACCENT * piece.downbeat
        velocity = velocity + rng.uniform(0, 14) * top + rng.normal(0, VELOCITY_NOISE, n)
    velocity = np.clip(np.round(velocity), 1, 127)
    targets = {
        "beat": piece.beat.astype(np.int64),
        "downbeat": piece.downbeat.astype(np.int64),
        "period": period_class(beat_s),
        "meter": piece.meter.astype(np.int64),
        "staff": piece.staff.astype(np.int64),
        "key": np.where(np.abs(key) <= 7, key + 7, UNKNOWN).astype(np.int64),
        "spell": np.where(tpc == UNKNOWN, UNKNOWN, spell_class(pitch, tpc)).astype(np.int64),
        "phase": phase_class(piece.phase),
    }
    # Transcription-like errors: a few notes missing, a few extra (soft, short, near a real one).
    keep = rng.random(n) >= rng.uniform(0, 0.03)
    n_add = int(rng.binomial(n, rng.uniform(0, 0.03)))
    src = rng.integers(0, n, n_add)
    add_on = onset[src] + rng.uniform(-0.03, 0.1, n_add)
    add_pitch = np.clip(pitch[src] + rng.choice([-12, -1, 1, 2, 12, 7], n_add), 21, 108)
    cols = [np.concatenate([a[keep], b]) for a, b in (
        (onset, add_on), (offset, add_on + rng.uniform(0.03, 0.2, n_add)), (pitch, add_pitch),
        (velocity, np.clip(velocity[src] * rng.uniform(0.3, 0.8, n_add), 1, 127)))]
    tg = {k: np.concatenate([v[keep], np.full(n_add, UNKNOWN)]) for k, v in targets.items()}
    order = np.lexsort((cols[2], cols[0]))
    t0 = cols[0][order].min()
    return Rendered(cols[0][order] - t0 + 0.5, cols[1][order] - t0 + 0.5, cols[2][order].astype(np.int64),
                    cols[3][order].astype(np.int64), {k: v[order] for k, v in tg.items()})
