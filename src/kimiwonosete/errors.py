"""Errors that are the user's to fix: the CLI prints their message as one line, no traceback."""


class KimiError(Exception):
    """A problem with the input, the environment or the options, explained in one line."""


class InputError(KimiError):
    """The input cannot be read as audio (missing, empty, truncated, not audio)."""


class OutputError(KimiError):
    """The output folder cannot be written."""


class ToolError(KimiError):
    """An external tool (ffmpeg, LilyPond) is missing, failed or timed out."""
