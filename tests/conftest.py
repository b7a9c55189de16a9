"""Shared fixtures: the example recording (made by FluidSynth) and its notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimiwonosete.examples import example_midi, write_example
from kimiwonosete.notes import Note


@pytest.fixture(scope="session")
def example_flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example") / "minuet.flac")


@pytest.fixture(scope="session")
def example_notes() -> list[Note]:
    """The notes the example recording was rendered from (its ground truth)."""
    midi = example_midi()
    return sorted(
        (Note(n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes),
        key=lambda n: (n.onset, n.pitch),
    )


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Work folders of runs without --workdir go to a temporary cache, not the user's."""
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
