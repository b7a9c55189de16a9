"""MIDI to audio with FluidSynth and a General MIDI SoundFont (Debian ``fluid-soundfont-gm``,
FluidR3_GM, MIT licence): how this project makes recordings that nobody else owns."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from kimiwonosete.audio.decode import ffmpeg_exe
from kimiwonosete.errors import ToolError
from kimiwonosete.files import atomic_path

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
SAMPLE_RATE = 44100
GAIN = 0.8
RENDER_TIMEOUT_S = 600


def soundfont() -> Path:
    for candidate in SOUNDFONTS:
        if Path(candidate).exists():
            return Path(candidate)
    raise ToolError("no General MIDI SoundFont found: install fluid-soundfont-gm")


def render_midi(midi: bytes, out: Path) -> Path:
    """Render MIDI bytes to ``out`` (WAV, or any format ffmpeg writes, by its suffix)."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ToolError("fluidsynth not found: install it (apt install fluidsynth fluid-soundfont-gm)")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-synth-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        cmd = [exe, "-ni", "-q", "-g", str(GAIN), "-r", str(SAMPLE_RATE), "-F", str(wav), str(soundfont()), str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
        if proc.returncode != 0 or not wav.exists():
            raise ToolError(f"fluidsynth failed: {proc.stderr.strip()[-300:]}")
        with atomic_path(out) as tmp_out:
            enc = subprocess.run(
                [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(wav), "-f", _muxer(out), str(tmp_out)],
                capture_output=True, text=True, timeout=RENDER_TIMEOUT_S,
            )
            if enc.returncode != 0:
                raise ToolError(f"ffmpeg could not write {out.name}: {enc.stderr.strip()[-300:]}")
    return out


def _muxer(path: Path) -> str:
    """ffmpeg's format name for a suffix (the temporary name hides the real suffix)."""
    suffix = path.suffix.lower().lstrip(".")
    return {"mp3": "mp3", "m4a": "ipod", "ogg": "ogg", "flac": "flac", "wav": "wav", "opus": "opus"}.get(suffix, suffix)
