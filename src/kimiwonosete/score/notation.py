"""From events in ticks to written values: bars, beats, ties, dots and triplets.

Both engravers (LilyPond and MusicXML) write exactly these values, so the two agree.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from kimiwonosete.score.model import STEPS, TICKS_PER_QUARTER, Event, Pitch, Score, Staff, TimeSignature

WHOLE = 4 * TICKS_PER_QUARTER
TRIPLET_TICKS = TICKS_PER_QUARTER // 3


@dataclass(frozen=True, slots=True)
class Written:
    """One written note, chord or rest.

    ``base``: 1 whole, 2 half, 4 quarter, 8 eighth, 16 sixteenth (0: a whole-bar rest; its
    ``ticks`` are the bar's).
    ``triplet``: inside a 3:2 tuplet, so it sounds ``2/3`` of its written value.
    ``tie``: tied to the next written value (same pitches).
    ``start``: where it starts, in ticks from the start of the score.
    ``grace``: grace notes written before it.
    """

    pitches: tuple[Pitch, ...]
    ticks: int
    base: int
    dots: int = 0
    triplet: bool = False
    tuplet_start: bool = False
    tuplet_stop: bool = False
    tie: bool = False
    start: int = 0
    grace: tuple[Pitch, ...] = ()

    @property
    def is_rest(self) -> bool:
        return not self.pitches


def _plain_values() -> dict[int, tuple[int, int]]:
    """Ticks -> (base, dots) for plain (non-tuplet) values down to the 16th."""
    values: dict[int, tuple[int, int]] = {}
    for base in (1, 2, 4, 8, 16):
        ticks = WHOLE // base
        values[ticks] = (base, 0)
        if ticks % 2 == 0 and base < 16:
            values[ticks * 3 // 2] = (base, 1)
    return values


PLAIN = _plain_values()
TRIPLET = {TRIPLET_TICKS: 8, 2 * TRIPLET_TICKS: 4}


def _is_triplet_beat(events: list[Event], beat_start: int, beat_ticks: int, compound: bool) -> bool:
    if compound:
        return False
    for e in events:
        for t in (e.start, e.end):
            if beat_start < t < beat_start + beat_ticks and (t - beat_start) % 3 != 0:
                return True
    return False


def _pieces(start: int, end: int, bar_start: int, ts: TimeSignature) -> list[int]:
    """Split [start, end) inside one bar into plain written lengths, beat-aware."""
    beat = ts.beat_ticks
    out: list[int] = []
    pos = start
    while pos < end:
        rel = pos - bar_start
        if rel % beat == 0:
            # On a beat: the longest plain value that fits in the bar: whole beats or a dotted beat.
            fits = [v for v in PLAIN if v <= end - pos]
            beat_values = [v for v in fits if v % beat == 0 or 2 * v == 3 * beat]
            length = max(beat_values) if beat_values else max(fits)
        else:
            # Off the beat: never tie across a beat inside a note; stop at the next beat.
            next_beat = bar_start + (rel // beat + 1) * beat
            limit = min(end, next_beat) - pos
            length = max(v for v in PLAIN if v <= limit)
        out.append(length)
        pos += length
    return out


def written_bars(events: list[Event], ts: TimeSignature, n_bars: int, pickup: int = 0) -> list[list[Written]]:
    """One voice's events as written values, bar by bar (ties across bars and beats).

    With ``pickup`` > 0 the first bar is an anacrusis: only its ticks from ``pickup`` on are written.
    """
    bar = ts.bar_ticks
    beat = ts.beat_ticks
    bars: list[list[Written]] = [[] for _ in range(n_bars)]
    by_bar: list[list[Event]] = [[] for _ in range(n_bars)]
    for e in events:  # one pass: each event filed under every bar it sounds in
        for b in range(max(e.start // bar, 0), min(-(-e.end // bar), n_bars)):
            by_bar[b].append(e)
    for b in range(n_bars):
        bar_start, bar_end = b * bar, (b + 1) * bar
        written_from = pickup if b == 0 else bar_start
        in_bar = [e for e in by_bar[b] if e.end > written_from]
        if len(in_bar) == 1 and in_bar[0].is_rest or not in_bar:
            if written_from == bar_start:
                bars[b].append(Written((), bar, 0, start=bar_start))
            else:  # a silent pickup: plain rests, as long as the pickup
                pos = written_from
                for n in _pieces(written_from, bar_end, bar_start, ts):
                    bars[b].append(Written((), n, *PLAIN[n], start=pos))
                    pos += n
            continue
        triplet_beats = {
            k for k in range(ts.beats_per_bar)
            if _is_triplet_beat(in_bar, bar_start + k * beat, beat, ts.compound)
        }
        for e in in_bar:
            s, t = max(e.start, written_from), min(e.end, bar_end)
            cuts = [s]
            # A triplet beat is written as one tuplet, so events are cut at its borders.
            for k in triplet_beats:
                for edge in (bar_start + k * beat, bar_start + (k + 1) * beat):
                    if s < edge < t:
                        cuts.append(edge)
            cuts = sorted(set(cuts)) + [t]
            parts: list[tuple[int, int, bool]] = []  # (start, ticks, triplet)
            for a, z in zip(cuts, cuts[1:]):
                k = (a - bar_start) // beat
                if k in triplet_beats:
                    parts.append((a, z - a, True))
                else:
                    p = a
                    for length in _pieces(a, z, bar_start, ts):
                        parts.append((p, length, False))
                        p += length
            for i, (p, length, trip) in enumerate(parts):
                last_piece = i == len(parts) - 1
                tie = not e.is_rest and (not last_piece or e.end > bar_end)
                grace = e.grace if p == e.start else ()
                if trip:
                    k = (p - bar_start) // beat
                    beat_start = bar_start + k * beat
                    if length == beat:  # a whole beat needs no tuplet
                        bars[b].append(Written(e.pitches, length, 4, tie=tie, start=p, grace=grace))
                        continue
                    bars[b].append(Written(
                        e.pitches, length, TRIPLET[length], triplet=True,
                        tuplet_start=p == beat_start, tuplet_stop=p + length == beat_start + beat,
                        tie=tie, start=p, grace=grace,
                    ))
                else:
                    base, dots = PLAIN[length]
                    bars[b].append(Written(e.pitches, length, base, dots, tie=tie, start=p, grace=grace))
    return bars


def attach(bars: list[list[Written]], ticks: list[int]) -> dict[tuple[int, int], list[int]]:
    """Which written value each mark at ``ticks`` goes on: the one starting nearest to it
    (the earlier one on a tie). Keys are (bar, index in bar); values, indices into ``ticks``.

    Marks (pedal, dynamics) hang on notes in both LilyPond and MusicXML, so both put them on
    the same written value.
    """
    starts = [(w.start, b, i) for b, bar in enumerate(bars) for i, w in enumerate(bar)]
    out: dict[tuple[int, int], list[int]] = {}
    if not starts:
        return out
    positions = [s for s, _, _ in starts]
    for k, tick in enumerate(ticks):
        j = bisect_right(positions, tick) - 1
        if j < 0 or (j + 1 < len(positions) and positions[j + 1] - tick < tick - positions[j]):
            j += 1
        _, b, i = starts[j]
        out.setdefault((b, i), []).append(k)
    return out


TREBLE_FROM = 65  # a bar whose middle note is F4 or higher reads best in treble clef ...
BASS_UNTIL = 55  # ... and one whose middle note is G3 or lower in bass clef (between: keep the clef)
CLEF_BARS = 2  # a clef changes only for this many bars running that want it


def _bar_pitches(staff: Staff, ts: TimeSignature, n_bars: int, sounding: bool) -> list[list[Pitch]]:
    """The pitches of each bar of ``staff`` (all voices): of the notes starting in it, or with
    ``sounding`` of every note heard in it."""
    pitches: list[list[Pitch]] = [[] for _ in range(n_bars)]
    for voice in staff.voices:
        for e in voice:
            first = e.start // ts.bar_ticks
            last = -(-e.end // ts.bar_ticks) if sounding else first + 1
            for b in range(max(first, 0), min(last, n_bars)):
                pitches[b] += e.pitches
    return pitches


def clef_changes(staff: Staff, ts: TimeSignature, n_bars: int) -> dict[int, str]:
    """Bars where the staff's clef changes (bar index -> clef), so that a hand playing far from
    its staff's home does not sit on ledger lines: the median pitch of the notes starting in a
    bar picks the clef, and only a run of ``CLEF_BARS`` bars (or the last bars) changes it.

    >>> from kimiwonosete.score.model import Pitch
    >>> high = lambda start: Event(start, 48, (Pitch(76, "E", 0, 5),))
    >>> low = lambda start: Event(start, 48, (Pitch(48, "C", 0, 3),))
    >>> clef_changes(Staff("bass", [low(0), high(48), high(96), low(144), low(192)]), TimeSignature(4, 4), 5)
    {1: 'treble', 3: 'bass'}
    """
    wanted: list[str | None] = []
    for bar in _bar_pitches(staff, ts, n_bars, sounding=False):
        middle = float(np.median([p.midi for p in bar])) if bar else None
        wanted.append(None if middle is None else "treble" if middle >= TREBLE_FROM else "bass" if middle <= BASS_UNTIL else "")
    changes, current = {}, staff.clef
    for b, want in enumerate(wanted):
        if not want or want == current:
            continue
        ahead = [w for w in wanted[b:] if w is not None][:CLEF_BARS]
        if all(w == want for w in ahead):  # (fewer than CLEF_BARS only at the end)
            changes[b] = current = want
    return changes


#: staff lines as diatonic steps (octave * 7 + letter, C4 = 28): treble E4-F5, bass G2-A3
TREBLE_LINES, BASS_LINES = (30, 38), (18, 26)
#: an octave sign starts on a bar where it saves at least this many ledger lines per note (its
#: notes around E6 or above, or A1 or below; 15ma: a second octave saving as much again) and
#: goes on while it saves at least the second. At 2.0 / 1.0 the smoke ragtime's right hand went
#: in and out of 8va every two bars around D6.
OTTAVA_START, OTTAVA_GO_ON = 2.5, 1.5


def _diatonic(pitch: Pitch) -> int:
    return pitch.octave * 7 + STEPS.index(pitch.step)


def ledger_lines(step: int, lines: tuple[int, int]) -> int:
    """Ledger lines a note at diatonic ``step`` needs on a staff spanning ``lines``.

    >>> [ledger_lines(s, TREBLE_LINES) for s in (28, 30, 38, 40, 42, 45)]  # C4 E4 F5 A5 C6 F6
    [1, 0, 0, 1, 2, 3]
    """
    low, high = lines
    return max(0, (low - step) // 2, (step - high) // 2)


def _saving(bar: list[Pitch], shift: int, lines: tuple[int, int]) -> float:
    """Ledger lines per note saved by writing ``bar`` ``shift`` octaves away (8va: -1)."""
    if not bar:
        return 0.0
    steps = [_diatonic(p) for p in bar]
    return sum(ledger_lines(s, lines) - ledger_lines(s + 7 * shift, lines) for s in steps) / len(bar)


def ottava_changes(staff: Staff, index: int, ts: TimeSignature, n_bars: int) -> dict[int, int]:
    """Bars where an octave sign starts, changes or stops (bar index -> octaves the notes are
    written nearer the staff: 1 for 8va, 2 for 15ma, -1 for 8vb, 0 to stop): above the upper
    staff (``index`` 0), below the lower one. Each octave is taken where it saves
    ``OTTAVA_START`` ledger lines a note, and kept while it saves ``OTTAVA_GO_ON``. A chord with
    its lowest notes near the staff still counts as high.

    >>> from kimiwonosete.score.model import Pitch
    >>> chord = lambda start, *p: Event(start, 48, tuple(Pitch(m, s, 0, o) for m, s, o in p))
    >>> high = lambda start: chord(start, (81, "A", 5), (91, "G", 6), (96, "C", 7))
    >>> mid = lambda start: chord(start, (72, "C", 5), (76, "E", 5))
    >>> top = lambda start: chord(start, (100, "E", 7), (103, "G", 7))
    >>> ottava_changes(Staff("treble", [mid(0), high(48), top(96), mid(144)]), 0, TimeSignature(4, 4), 4)
    {1: 1, 2: 2, 3: 0}
    """
    sign, lines, most = (1, TREBLE_LINES, 2) if index == 0 else (-1, BASS_LINES, 1)
    changes, current = {}, 0
    for b, bar in enumerate(_bar_pitches(staff, ts, n_bars, sounding=True)):
        want, saved = 0, 0.0
        for octaves in range(1, most + 1):
            total = _saving(bar, -sign * octaves, lines)
            if total - saved < (OTTAVA_GO_ON if abs(current) >= octaves else OTTAVA_START):
                break
            want, saved = sign * octaves, total
        if want != current:
            changes[b] = current = want
    return changes


#: The marks a written value can carry, in the order they are written.
PEDAL_UP, PEDAL_DOWN = "pedal-up", "pedal-down"


def staff_marks(bars: list[list[Written]], staff: int, score: Score) -> dict[tuple[int, int], list[str]]:
    """The marks on each written value of staff ``staff`` (0 upper, 1 lower): dynamics under the
    upper staff, the sustain pedal under the lower one. A release and a press on the same value
    come in that order (a pedal change); a press released on the value it starts on is dropped.
    """
    if staff == 0:
        ticks = [t for t, _ in score.dynamics]
        names = [m for _, m in score.dynamics]
    else:
        ticks = [t for d, u in score.pedal for t in (d, u)]
        names = [PEDAL_DOWN, PEDAL_UP] * len(score.pedal)
    out: dict[tuple[int, int], list[str]] = {}
    for place, ks in attach(bars, ticks).items():
        marks = [names[k] for k in ks]
        if staff == 1:
            while PEDAL_DOWN in marks and PEDAL_UP in marks and marks.index(PEDAL_DOWN) < marks.index(PEDAL_UP):
                marks.remove(PEDAL_DOWN)  # pressed and released here: no mark at all
                marks.remove(PEDAL_UP)
            marks.sort(key=lambda m: m != PEDAL_UP)
        else:
            marks = marks[-1:]  # one dynamic per note: the later one
        if marks:
            out[place] = marks
    return out
