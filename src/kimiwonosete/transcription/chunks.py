"""Long recordings in overlapping chunks: the plan, and the merge of each chunk's notes.

Every chunk is transcribed on its own with a margin of audio on both sides of its *core*; a note
belongs to the chunk whose core holds its onset, so the model has heard at least ``margin_s``
before and after every note it keeps. Notes still sounding where a chunk's audio ends are joined
with their continuation in the next chunk. A note at a border may be placed a frame earlier by
one chunk and later by the other, so both keep it (within ``BORDER_S``) and it is kept once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from kimiwonosete.notes import Note, Pedal, Performance

#: Seconds of audio each chunk owns. Transkun reads 16 s windows every 14 s, so a 60 s core with
#: two 3 s margins is exactly five of its windows (see ``window_count``).
CHUNK_S = 60.0
MARGIN_S = 3.0
#: A note that ends this close to the end of its chunk's audio was cut off by the chunk.
CUT_S = 0.1
#: How far two chunks may place the same onset apart: each chunk keeps the notes up to this far
#: outside its core, and same-pitch onsets from two chunks within twice this are one note.
BORDER_S = 0.05

Event = TypeVar("Event", Note, Pedal)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of work, in samples: audio ``[start, end)`` is transcribed, and the notes whose
    onsets lie in ``[core_start, core_end)`` are kept."""

    index: int
    start: int
    end: int
    core_start: int
    core_end: int


def plan_chunks(n_samples: int, sample_rate: int, chunk_s: float = CHUNK_S, margin_s: float = MARGIN_S,
                workers: int = 1) -> list[Chunk]:
    """Cut ``n_samples`` of audio into chunks whose cores tile it exactly, for ``workers`` workers.

    Audio no longer than one core plus a margin is a single chunk (no margins needed). Otherwise
    there are as many chunks as ``chunk_s``-second cores take (a last sliver no longer than a
    margin joins the one before), raised to a multiple of ``workers`` so that every worker gets
    the same number, and all cores are equally long (within a sample), so that they finish
    together: on 3 minutes, two workers get two 45 s chunks each instead of one sitting idle
    while the other does the third 60 s one.

    >>> [(c.start, c.end, c.core_start, c.core_end) for c in plan_chunks(250, 1, 100, 5)]
    [(0, 88, 0, 83), (78, 171, 83, 166), (161, 250, 166, 250)]
    >>> len(plan_chunks(104, 1, 100, 5)), len(plan_chunks(250, 1, 100, 5, workers=2))
    (1, 4)
    """
    if chunk_s <= 0 or margin_s < 0 or workers < 1:
        raise ValueError("chunk_s must be positive, margin_s not negative and workers at least 1")
    core = max(1, round(chunk_s * sample_rate))
    margin = round(margin_s * sample_rate)
    if n_samples <= core + margin:
        return [Chunk(0, 0, n_samples, 0, n_samples)]
    count = math.ceil(n_samples / core)
    if n_samples - (count - 1) * core <= margin:  # a sliver: the cores share it
        count -= 1
    count = math.ceil(count / workers) * workers
    bounds = [n_samples * i // count for i in range(count + 1)]
    return [Chunk(i, max(0, a - margin), min(n_samples, b + margin), a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def worker_count(n_samples: int, sample_rate: int, chunk_s: float, slots: int) -> int:
    """How many of ``slots`` workers to start for ``n_samples``: no more than there are whole
    ``chunk_s``-second chunks of audio, so that each worker's start (a process, the model loaded
    again) is paid for by at least a chunk of work; a short input stays in one process.

    >>> worker_count(180 * 10, 10, 60.0, 2), worker_count(100 * 10, 10, 60.0, 2), worker_count(180 * 10, 10, 60.0, 8)
    (2, 1, 3)
    """
    return max(1, min(slots, n_samples // max(1, round(chunk_s * sample_rate))))


def _continued(event: Event, cut_at: float, following: Sequence[tuple[Sequence[Event], float]], same) -> float:
    """The offset of ``event``, cut off by its chunk's audio ending at ``cut_at``, followed through
    the pieces of it that the ``following`` chunks (events, audio end) heard."""
    offset = event.offset
    for events, end in following:
        if offset < cut_at - CUT_S:
            break
        pieces = [e for e in events if same(e, event) and e.onset <= offset and e.offset > offset - CUT_S]
        if not pieces:
            break
        offset, cut_at = max(offset, *(e.offset for e in pieces)), end
    return offset


def merge_chunks(chunks: Sequence[Chunk], parts: Sequence[Performance], sample_rate: int) -> Performance:
    """One performance from each chunk's (absolute-time) notes and pedal; see the module docstring.

    >>> a = Performance([Note(1.0, 2.0, 60, 80), Note(9.5, 10.95, 62, 80)])   # audio 0-11 s, core 0-10
    >>> b = Performance([Note(9.0, 13.0, 62, 70), Note(9.51, 12.0, 64, 70)])  # audio 9-20 s, core 10-20
    >>> plan = [Chunk(0, 0, 11, 0, 10), Chunk(1, 9, 20, 10, 20)]
    >>> [(n.onset, n.offset, n.pitch) for n in merge_chunks(plan, [a, b], 1).notes]
    [(1.0, 2.0, 60), (9.5, 13.0, 62)]
    """
    if len(chunks) != len(parts):
        raise ValueError("one performance per chunk")
    ends = [c.end / sample_rate for c in chunks]
    notes: list[tuple[Note, int]] = []
    pedals: list[Pedal] = []
    for i, (chunk, part) in enumerate(zip(chunks, parts)):
        lo, hi = chunk.core_start / sample_rate - BORDER_S, chunk.core_end / sample_rate + BORDER_S
        later_notes = [(p.notes, e) for p, e in zip(parts[i + 1 :], ends[i + 1 :])]
        later_pedals = [(p.pedals, e) for p, e in zip(parts[i + 1 :], ends[i + 1 :])]
        for n in part.notes:
            if lo <= n.onset < hi:
                offset = _continued(n, ends[i], later_notes, lambda a, b: a.pitch == b.pitch)
                notes.append((Note(n.onset, offset, n.pitch, n.velocity), i))
        for p in part.pedals:
            if lo <= p.onset < hi:
                pedals.append(Pedal(p.onset, _continued(p, ends[i], later_pedals, lambda a, b: True)))
    duration = ends[-1] if ends else 0.0
    return Performance(_once(notes), _once_pedals(pedals), duration=duration)


def _once(notes: list[tuple[Note, int]]) -> list[Note]:
    """The notes (each with its chunk's index), the second of two same-pitch onsets from different
    chunks under ``2 * BORDER_S`` apart dropped (a note on a border, heard by both chunks); the
    first keeps the later offset."""
    out: list[Note] = []
    last: dict[int, tuple[int, int]] = {}  # pitch -> (index in out, chunk) of its latest note
    for n, chunk in sorted(notes, key=lambda nc: (nc[0].onset, nc[0].pitch)):
        j, other = last.get(n.pitch, (-1, chunk))
        if other != chunk and n.onset - out[j].onset < 2 * BORDER_S:
            if n.offset > out[j].offset:
                out[j] = Note(out[j].onset, n.offset, n.pitch, out[j].velocity)
            continue
        last[n.pitch] = (len(out), chunk)
        out.append(n)
    return out


def _once_pedals(pedals: list[Pedal]) -> list[Pedal]:
    """Overlapping pedal intervals (one press heard from both sides of a border) become one."""
    out: list[Pedal] = []
    for p in sorted(pedals, key=lambda p: p.onset):
        if out and p.onset <= out[-1].offset:
            out[-1] = Pedal(out[-1].onset, max(out[-1].offset, p.offset))
        else:
            out.append(p)
    return out
