"""Progress reporting: bars on a terminal, plain log lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO


class Reporter(Protocol):
    def start(self, stage: str) -> None: ...
    def advance(self, done: int, total: int) -> None: ...
    def finish(self, stage: str, seconds: float) -> None: ...
    def warn(self, message: str) -> None: ...


class QuietReporter:
    """Reports nothing but warnings."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def start(self, stage: str) -> None: ...

    def advance(self, done: int, total: int) -> None: ...

    def finish(self, stage: str, seconds: float) -> None: ...

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.stream)


class LogReporter(QuietReporter):
    """One plain line per finished stage and per finished chunk: for logs and pipes.

    Nothing is printed when a stage starts, so that a bad input yields its error line alone.
    """

    def advance(self, done: int, total: int) -> None:
        print(f"transcribe: chunk {done}/{total}", file=self.stream, flush=True)

    def finish(self, stage: str, seconds: float) -> None:
        print(f"{stage}: done in {seconds:.1f} s", file=self.stream, flush=True)


class BarReporter(LogReporter):
    """A tqdm bar with ETA for stages that report chunks; a line for the others."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._bar = None
        self._stage = ""

    def start(self, stage: str) -> None:
        self._stage = stage

    def advance(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(desc=self._stage, total=total, file=self.stream, unit="chunk", dynamic_ncols=True)
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def finish(self, stage: str, seconds: float) -> None:
        if self._bar is None:
            super().finish(stage, seconds)
            return
        self._bar.set_postfix_str(f"{seconds:.1f} s")
        self._bar.close()
        self._bar = None


def default_reporter(quiet: bool = False, stream: TextIO | None = None) -> Reporter:
    stream = stream or sys.stderr
    if quiet:
        return QuietReporter(stream)
    return BarReporter(stream) if stream.isatty() else LogReporter(stream)
