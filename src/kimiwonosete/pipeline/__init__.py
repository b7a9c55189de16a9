"""Running the stages for one input, with timings and progress."""

from kimiwonosete.pipeline.run import FORMATS, Result, transcribe

__all__ = ["FORMATS", "Result", "transcribe"]
