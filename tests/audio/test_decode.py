from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from kimiwonosete.audio import decode, decode_to_file, ffmpeg_exe, read_samples
from kimiwonosete.errors import InputError

TONE_S = 1.5


def _make(path: Path, *args: str) -> Path:
    """A 440 Hz tone written by ffmpeg with the given output options."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={TONE_S}",
         *args, str(path)], check=True,
    )
    return path


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("s16.wav", ["-ar", "44100", "-c:a", "pcm_s16le"]),
        ("s24_stereo_48k.wav", ["-ar", "48000", "-ac", "2", "-c:a", "pcm_s24le"]),
        ("f32_8k.wav", ["-ar", "8000", "-c:a", "pcm_f32le"]),
        ("u8_6ch.wav", ["-ar", "22050", "-ac", "6", "-c:a", "pcm_u8"]),
        ("tone.flac", ["-ar", "16000"]),
        ("tone.mp3", ["-ar", "44100"]),
        ("tone.ogg", ["-ar", "44100", "-c:a", "libvorbis"]),
        ("tone.m4a", ["-ar", "44100", "-c:a", "aac"]),
    ],
)
def test_decodes_any_format_to_mono_at_the_model_rate(tmp_path: Path, name: str, args: list[str]) -> None:
    y = decode(_make(tmp_path / name, *args), 44100)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / 44100 - TONE_S) < 0.06  # mp3/aac add a few ms of padding
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 44100 / len(y) - 440) < 3
    assert 0.05 < np.abs(y).max() <= 1.0


def test_decodes_the_audio_of_a_video(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1",
         "-f", "lavfi", "-i", "sine=frequency=220:duration=1", "-shortest", "-c:v", "mpeg4", "-c:a", "aac",
         str(video)], check=True,
    )
    assert abs(len(decode(video, 16000)) / 16000 - 1.0) < 0.1


def _empty(d: Path) -> Path:
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


def _text(d: Path) -> Path:
    (d / "notes.txt").write_text("not audio at all\n" * 50)
    return d / "notes.txt"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.wav", "no such file"),
        (_empty, "empty"),
        (_text, "cannot decode"),
        (lambda d: d, "not a file"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode(make(tmp_path), 44100)


def test_truncated_wav_header_is_an_input_error(tmp_path: Path) -> None:
    whole = _make(tmp_path / "whole.wav", "-c:a", "pcm_s16le").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:30])
    with pytest.raises(InputError):
        decode(cut, 44100)


def test_video_without_audio_is_an_input_error(tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1",
         "-c:v", "mpeg4", str(video)], check=True,
    )
    with pytest.raises(InputError, match="no audio"):
        decode(video, 44100)


def test_decode_to_file_streams_the_part_asked_for(tmp_path: Path) -> None:
    wav = _make(tmp_path / "tone.wav", "-ar", "16000")
    whole = decode(wav, 16000)
    n = decode_to_file(wav, 16000, tmp_path / "part.f32", start=0.5, end=1.0)
    part = read_samples(tmp_path / "part.f32")
    assert n == len(part) == 8000
    np.testing.assert_array_equal(read_samples(tmp_path / "part.f32", 100, 250), part[100:250])
    np.testing.assert_allclose(part, whole[8000:16000], atol=1e-4)
    assert decode_to_file(wav, 16000, tmp_path / "all.f32") == len(whole)
    assert not list(tmp_path.glob(".*part"))


def test_a_part_past_the_end_is_an_input_error(tmp_path: Path) -> None:
    wav = _make(tmp_path / "tone.wav")
    with pytest.raises(InputError, match="no audio samples in the part asked for"):
        decode_to_file(wav, 16000, tmp_path / "part.f32", start=5.0)
    assert not (tmp_path / "part.f32").exists()
