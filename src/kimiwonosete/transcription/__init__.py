"""Audio to notes: pretrained piano transcription models behind one interface."""

from __future__ import annotations

from kimiwonosete.errors import KimiError
from kimiwonosete.transcription.base import ProgressFn, Transcriber

BACKENDS = ("transkun", "basic-pitch")
DEFAULT_BACKEND = "transkun"
#: Where a backend may run: ``auto`` picks a CUDA GPU when torch sees one.
DEVICES = ("auto", "cpu", "cuda")


def get_transcriber(name: str = DEFAULT_BACKEND, device: str = "auto", threads: int | None = None) -> Transcriber:
    """The backend called ``name`` (one of ``BACKENDS``) on ``device`` (``auto``, ``cpu``, ``cuda``),
    computing with ``threads`` CPU threads (``None``: its library's default, every core)."""
    if name == "transkun":
        from kimiwonosete.transcription.transkun import TranskunTranscriber

        return TranskunTranscriber(device=device, threads=threads)
    if name == "basic-pitch":
        if device == "cuda":
            raise KimiError("the basic-pitch backend runs on the CPU only: use --device cpu (or auto)")
        from kimiwonosete.transcription.basic_pitch import BasicPitchTranscriber

        return BasicPitchTranscriber(threads=threads)
    raise KimiError(f"unknown model {name!r}: choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "DEVICES", "ProgressFn", "Transcriber", "get_transcriber"]
