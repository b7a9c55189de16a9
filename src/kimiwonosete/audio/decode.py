"""Decode any audio or video file to a mono float32 signal with ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from kimiwonosete.errors import InputError
from kimiwonosete.tools import executable

BLOCK_BYTES = 1 << 20
DECODE_TIMEOUT_S = 3600


def ffmpeg_exe() -> str:
    """The system ``ffmpeg`` where present, else the binary shipped by ``imageio-ffmpeg``."""
    return executable("ffmpeg", "imageio_ffmpeg", "get_ffmpeg_exe",
                      "install it (apt install ffmpeg) or `pip install imageio-ffmpeg`")


def _ffmpeg_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "does not contain any stream" in ln or "matches no streams" in ln:
            return "it has no audio stream"
        if "Invalid data found" in ln or "could not find codec" in ln.lower():
            return "it is not an audio or video file ffmpeg can read"
    return lines[-1] if lines else "ffmpeg failed"


def decode(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to a 1-D float32 array at ``sample_rate`` Hz (channels averaged).

    The signal is read from ffmpeg in blocks into one growing buffer, so it is held once.

    >>> y = decode("piece.flac", 44100)  # doctest: +SKIP
    >>> y.dtype, y.ndim  # doctest: +SKIP
    (dtype('float32'), 1)
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(path), "-map", "0:a:0", "-vn",
        "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]
    buf = bytearray()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        while block := proc.stdout.read(BLOCK_BYTES):
            buf += block
        stderr = proc.stderr.read().decode("utf-8", "replace")
        rc = proc.wait(timeout=DECODE_TIMEOUT_S)
    if rc != 0:
        raise InputError(f"{path}: cannot decode audio: {_ffmpeg_reason(stderr)}")
    usable = len(buf) - len(buf) % 4
    if usable == 0:
        raise InputError(f"{path}: contains no audio samples")
    del buf[usable:]
    return np.frombuffer(buf, dtype="<f4")
