"""Audio input: any file ffmpeg can decode, as mono float32 at the model's rate."""

from kimiwonosete.audio.decode import decode, decode_into, decode_to_file, ffmpeg_exe, read_samples

__all__ = ["decode", "decode_into", "decode_to_file", "ffmpeg_exe", "read_samples"]
