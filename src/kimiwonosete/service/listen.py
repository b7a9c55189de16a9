"""The page's two players' audio, made once per job and kept in its store (``jobs/<id>/view/…``):

- the recording: the job's own input (the store keeps it), cut to the part asked for (start/end)
  so that its time 0 is the score's, without any video, as Opus (a few MB for an hour; every
  current browser plays it). A MIDI input has no recording: its performance is played instead.
- the score: the score MIDI rendered with FluidSynth and the SoundFont the project already uses
  (:mod:`kimiwonosete.audio.synth`), so a user hears what was written.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kimiwonosete.audio.decode import ffmpeg_exe
from kimiwonosete.audio.synth import render_midi
from kimiwonosete.errors import ToolError
from kimiwonosete.pipeline.store import Store
from kimiwonosete.service.jobs import artifact_key, local_copy, prefix

KINDS = ("recording", "score")
CONTENT_TYPE = "audio/ogg"
BITRATE = "96k"
ENCODE_TIMEOUT_S = 600


def audio_key(job_id: str, kind: str) -> str:
    return f"{prefix(job_id)}/view/{kind}.opus"


def input_key(store: Store, job_id: str) -> str | None:
    """The job's stored input (an upload or a downloaded link), named by the service, not the user."""
    found = store.keys(f"{prefix(job_id)}/input")
    return found[0] if found else None


def _encode(source: Path, out: Path, start: float, end: float | None) -> None:
    span = ["-ss", f"{start:.3f}"] + (["-t", f"{end - start:.3f}"] if end is not None else [])
    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *span, "-i", str(source), "-vn",
                           "-c:a", "libopus", "-b:a", BITRATE, "-f", "opus", str(out)],
                          capture_output=True, text=True, timeout=ENCODE_TIMEOUT_S)
    if proc.returncode != 0:
        raise ToolError(f"ffmpeg could not encode the recording: {proc.stderr.strip()[-300:]}")


def make(store: Store, job_id: str, kind: str, options: dict[str, Any], artifacts: dict[str, str]) -> str | None:
    """The key of ``kind``'s audio (made now if it is not there yet); ``None`` if the job has
    nothing to make it from. ``artifacts``: format → stored artifact name."""
    key = audio_key(job_id, kind)
    if store.size(key):
        return key
    midi_name = artifacts.get("mid") if kind == "score" else None
    source = input_key(store, job_id) if kind == "recording" else None
    if kind == "recording" and source is not None and source.endswith(".mid"):
        # A MIDI input: its performance (already cut to start/end) is what was played.
        midi_name, source = artifacts.get("performance"), None
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-listen-") as tmp:
        out = Path(tmp) / "out.opus"
        if midi_name is not None:
            midi = store.get(artifact_key(job_id, midi_name))
            if midi is None:
                return None
            render_midi(midi, out)
        elif source is not None:
            with local_copy(store, source) as path:
                _encode(path, out, float(options.get("start") or 0.0), options.get("end"))
        else:
            return None
        with store.writer(key) as dst, open(out, "rb") as src:
            dst.write(src.read())
    return key
