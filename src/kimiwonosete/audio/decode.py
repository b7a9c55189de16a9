"""Decode any audio or video file to a mono float32 signal with ffmpeg."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kimiwonosete.errors import InputError
from kimiwonosete.files import atomic_path
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
        if "Invalid data found" in ln or "could not find codec" in ln.lower() or ln.endswith(": Invalid argument"):
            return "it is not an audio or video file ffmpeg can read"
    return lines[-1] if lines else "ffmpeg failed"


def _check_input(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")


def _pcm_blocks(path: Path, sample_rate: int, start: float = 0.0, end: float | None = None) -> Iterator[bytes]:
    """ffmpeg's mono float32 output for seconds ``start`` to ``end`` of ``path``, block by block;
    an InputError if it fails."""
    _check_input(path)
    if start < 0 or (end is not None and end <= start):
        raise InputError(f"{path}: the part to take must start at 0 s or later and end after it starts")
    seek = ["-ss", f"{start:.6f}"] if start else []
    length = ["-t", f"{end - start:.6f}"] if end is not None else []
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
        *seek, "-i", str(path), *length, "-map", "0:a:0", "-vn",
        "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        # stderr is drained by a thread: a chatty ffmpeg must not block on a full pipe mid-file.
        errors: list[bytes] = []
        drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        drain.start()
        total = 0
        try:
            while block := proc.stdout.read(BLOCK_BYTES):
                total += len(block)
                yield block
        except BaseException:  # the reader gave up (an error, Ctrl-C): stop ffmpeg, don't wait on it
            proc.kill()
            raise
        rc = proc.wait(timeout=DECODE_TIMEOUT_S)
        drain.join()
    if rc != 0:
        raise InputError(f"{path}: cannot decode audio: {_ffmpeg_reason(b''.join(errors).decode('utf-8', 'replace'))}")
    if total < 4:
        raise InputError(f"{path}: contains no audio samples" + (" in the part asked for" if start or end else ""))


def decode(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to a 1-D float32 array at ``sample_rate`` Hz (channels averaged).

    >>> y = decode("piece.flac", 44100)  # doctest: +SKIP
    >>> y.dtype, y.ndim  # doctest: +SKIP
    (dtype('float32'), 1)
    """
    buf = bytearray()
    for block in _pcm_blocks(Path(path), sample_rate):
        buf += block
    del buf[len(buf) - len(buf) % 4 :]
    return np.frombuffer(buf, dtype="<f4")


def decode_to_file(path: str | Path, sample_rate: int, target: str | Path, start: float = 0.0,
                   end: float | None = None) -> int:
    """Decode seconds ``start`` to ``end`` (default: all) of ``path`` like :func:`decode`, streaming
    the raw little-endian float32 samples into ``target`` (written under a temporary name, then
    renamed); returns the number of samples.

    A long recording never sits in memory: read parts of it back with :func:`read_samples`.
    """
    with atomic_path(Path(target)) as tmp, open(tmp, "wb") as out:
        return decode_into(path, sample_rate, out, start, end)


def decode_into(path: str | Path, sample_rate: int, out: BinaryIO, start: float = 0.0, end: float | None = None) -> int:
    """:func:`decode_to_file` into an open binary file (a store's object, say); returns the
    number of samples written."""
    total = 0
    pending = b""
    for block in _pcm_blocks(Path(path), sample_rate, start, end):
        block = pending + block
        whole = len(block) - len(block) % 4
        out.write(block[:whole])  # whole samples only: a stream cannot be truncated afterwards
        pending = block[whole:]
        total += whole
    return total // 4


def read_samples(path: str | Path, start: int = 0, end: int | None = None) -> np.ndarray:
    """Samples ``start`` to ``end`` of a file :func:`decode_to_file` wrote: only those are read
    (a plain read, not a memory map, so nothing of the rest stays resident)."""
    end = Path(path).stat().st_size // 4 if end is None else end
    return np.fromfile(path, dtype="<f4", count=max(0, end - start), offset=4 * start)
