"""Score -> LilyPond source, and LilyPond source -> PDF."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from kimiwonosete.engrave.text import lilypond_string
from kimiwonosete.errors import ToolError
from kimiwonosete.score.model import STEPS, TICKS_PER_QUARTER, Pitch, Score
from kimiwonosete.score.notation import PEDAL_DOWN, PEDAL_UP, Written, staff_marks, written_bars
from kimiwonosete.tools import executable

LILYPOND_VERSION = "2.24.0"
RENDER_TIMEOUT_S = 300
CREDIT = "Transcribed automatically by KimiWoNosete"
NOTE_NAMES = "cdefgab"
ALTER_SUFFIX = {-2: "eses", -1: "es", 0: "", 1: "is", 2: "isis"}
LILYPOND_MARKS = {PEDAL_DOWN: "\\sustainOn", PEDAL_UP: "\\sustainOff"}  # dynamics: \\p, \\mf, ...


def _pitch(p: Pitch) -> str:
    marks = p.octave - 3
    return NOTE_NAMES[STEPS.index(p.step)] + ALTER_SUFFIX[p.alter] + ("'" * marks if marks > 0 else "," * -marks)


def _written(w: Written, bar_length: str, marks: list[str]) -> str:
    after = "".join(LILYPOND_MARKS.get(m, f"\\{m}") for m in marks)
    if w.base == 0:
        return f"R{bar_length}{after}"
    length = f"{w.base}{'.' * w.dots}"
    if w.is_rest:
        return f"r{length}{after}"
    body = _pitch(w.pitches[0]) if len(w.pitches) == 1 else "<" + " ".join(_pitch(p) for p in w.pitches) + ">"
    return body + length + after + ("~" if w.tie else "")


def _tempo(score: Score, qpm: int) -> str:
    """``\\tempo`` in the beat's unit: a dotted quarter in compound meter."""
    if score.time_signature.compound:
        return f"\\tempo 4. = {round(qpm / 1.5)}"
    return f"\\tempo 4 = {qpm}"


def _partial(score: Score) -> str:
    """``\\partial`` for a pickup bar, in 16ths (a pickup is a whole number of them)."""
    if not score.pickup:
        return ""
    sixteenths = (score.time_signature.bar_ticks - score.pickup) // (TICKS_PER_QUARTER // 4)
    return f" \\partial 16*{sixteenths}"


def _staff_music(index: int, score: Score, tempo_marks: dict[int, int]) -> str:
    ts = score.time_signature
    bar_length = f"1*{ts.numerator}/{ts.denominator}"
    bars = written_bars(score.staves[index], ts, score.n_bars, score.pickup)
    marks = staff_marks(bars, index, score)
    lines = []
    for number, bar in enumerate(bars, start=1):
        tokens = [_tempo(score, tempo_marks[number - 1])] if number - 1 in tempo_marks else []
        for i, w in enumerate(bar):
            if w.tuplet_start:
                tokens.append("\\tuplet 3/2 {")
            tokens.append(_written(w, bar_length, marks.get((number - 1, i), [])))
            if w.tuplet_stop:
                tokens.append("}")
        lines.append(f"    {' '.join(tokens)} | % {number}")
    return "\n".join(lines)


def lilypond_source(score: Score) -> str:
    """The whole ``.ly`` file for ``score``: title, key, meter, tempo, a piano staff."""
    ts, key = score.time_signature, score.key
    tonic = key.tonic
    (_, first), *later = score.marks
    key_name = NOTE_NAMES[STEPS.index(tonic[0])] + ALTER_SUFFIX[tonic.count("#") - tonic.count("b")]
    marks_by_staff = (dict(later), {})  # later marks are printed once, above the upper staff
    staves = "\n".join(
        f'    \\new Staff = "{name}" {{\n    \\clef {staff.clef} \\global\n'
        f'{_staff_music(index, score, marks)}\n    \\bar "|."\n    }}'
        for index, (name, staff, marks) in enumerate(zip(("upper", "lower"), score.staves, marks_by_staff))
    )
    return f"""\\version "{LILYPOND_VERSION}"
\\header {{
  title = {lilypond_string(score.title)}
  tagline = {lilypond_string(CREDIT)}
}}
global = {{
  \\key {key_name} \\{key.mode}
  \\time {ts.numerator}/{ts.denominator}{_partial(score)}
  {_tempo(score, first)}
}}
\\score {{
  \\new PianoStaff <<
{staves}
  >>
  \\layout {{ }}
}}
"""


def lilypond_exe() -> str:
    """The system ``lilypond`` where present, else the binary shipped by the PyPI ``lilypond`` wheel."""
    return executable("lilypond", "lilypond", "executable", "install it (apt install lilypond) or `pip install lilypond`")


def render_pdf(source: str, timeout_s: float = RENDER_TIMEOUT_S) -> bytes:
    """Engrave LilyPond ``source`` and return the PDF's bytes (work happens in a private folder)."""
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-ly-") as tmp:
        ly = Path(tmp) / "score.ly"
        ly.write_text(source, encoding="utf-8")
        cmd = [lilypond_exe(), "-dno-point-and-click", "--pdf", "-o", str(Path(tmp) / "score"), str(ly)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"LilyPond took longer than {timeout_s:.0f} s and was stopped") from exc
        pdf = Path(tmp) / "score.pdf"
        if proc.returncode != 0 or not pdf.exists():
            errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
            raise ToolError("LilyPond failed: " + (errors[0] if errors else proc.stderr.strip()[-300:]))
        return pdf.read_bytes()
