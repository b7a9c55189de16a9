"""KimiWoNosete: piano recordings to sheet music (PDF, LilyPond, MusicXML, MIDI).

>>> import kimiwonosete
>>> result = kimiwonosete.transcribe("piece.flac", "out")  # doctest: +SKIP
>>> result.score.key, result.artifacts["pdf"]  # doctest: +SKIP
"""

from kimiwonosete.pipeline import FORMATS, Result, transcribe

__all__ = ["FORMATS", "Result", "transcribe"]
__version__ = "0.1.0"
