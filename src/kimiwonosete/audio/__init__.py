"""Audio input: any file ffmpeg can decode, as mono float32 at the model's rate."""

from kimiwonosete.audio.decode import decode, ffmpeg_exe

__all__ = ["decode", "ffmpeg_exe"]
