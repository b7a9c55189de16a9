"""Audio to notes: pretrained piano transcription models behind one interface."""

from __future__ import annotations

from kimiwonosete.errors import KimiError
from kimiwonosete.transcription.base import ProgressFn, Transcriber

BACKENDS = ("transkun", "basic-pitch")
DEFAULT_BACKEND = "transkun"


def get_transcriber(name: str = DEFAULT_BACKEND) -> Transcriber:
    """The backend called ``name`` (one of ``BACKENDS``)."""
    if name == "transkun":
        from kimiwonosete.transcription.transkun import TranskunTranscriber

        return TranskunTranscriber()
    if name == "basic-pitch":
        from kimiwonosete.transcription.basic_pitch import BasicPitchTranscriber

        return BasicPitchTranscriber()
    raise KimiError(f"unknown model {name!r}: choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "ProgressFn", "Transcriber", "get_transcriber"]
