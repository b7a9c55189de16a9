"""Score -> LilyPond source, and LilyPond source -> PDF."""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kimiwonosete.engrave.text import lilypond_string
from kimiwonosete.errors import ToolError
from kimiwonosete.score.model import STEPS, TICKS_PER_QUARTER, KeySignature, Pitch, Score
from kimiwonosete.score.notation import (
    PEDAL_DOWN,
    PEDAL_UP,
    Written,
    clef_changes,
    ottava_changes,
    staff_marks,
    written_bars,
)
from kimiwonosete.tools import executable

LILYPOND_VERSION = "2.24.0"
RENDER_TIMEOUT_S = 300
CREDIT = "Transcribed automatically by KimiWoNosete"
NOTE_NAMES = "cdefgab"
ALTER_SUFFIX = {-2: "eses", -1: "es", 0: "", 1: "is", 2: "isis"}
STAFF_NAMES = ("upper", "lower")
#: Titles longer than TITLE_FIT_CHARS characters are set smaller, by LilyPond's font steps (6 a
#: doubling), so they stay on the page: at the default size a 64-character file name in lower
#: case filled the line and a 76-character one ran off both edges. At MIN_TITLE_SIZE (half size)
#: a title is cut to twice TITLE_FIT_CHARS, ending in an ellipsis; the MusicXML keeps it whole.
TITLE_FIT_CHARS = 56
MIN_TITLE_SIZE = -6.0
ONE_VOICE, VOICE_ONE = "\\oneVoice", "\\voiceOne"
LILYPOND_MARKS = {PEDAL_DOWN: "\\sustainOn", PEDAL_UP: "\\sustainOff"}  # dynamics: \\p, \\mf, ...


def _pitch(p: Pitch) -> str:
    marks = p.octave - 3
    return NOTE_NAMES[STEPS.index(p.step)] + ALTER_SUFFIX[p.alter] + ("'" * marks if marks > 0 else "," * -marks)


def _written(w: Written, bar_length: str, marks: list[str], rest: str = "r") -> str:
    """One written value; ``rest`` is ``"s"`` for a second voice, whose rests are not printed."""
    after = "".join(LILYPOND_MARKS.get(m, f"\\{m}") for m in marks)
    if w.base == 0:
        return f"{rest.upper() if rest == 'r' else rest}{bar_length}{after}"
    length = f"{w.base}{'.' * w.dots}"
    if w.is_rest:
        return f"{rest}{length}{after}"
    body = _pitch(w.pitches[0]) if len(w.pitches) == 1 else "<" + " ".join(_pitch(p) for p in w.pitches) + ">"
    return _grace(w) + body + length + after + ("~" if w.tie else "")


def _grace(w: Written) -> str:
    """A slashed eighth for one grace note (acciaccatura), 16ths for several."""
    if not w.grace:
        return ""
    if len(w.grace) == 1:
        return f"\\acciaccatura {_pitch(w.grace[0])}8 "
    return "\\grace { " + " ".join(f"{_pitch(p)}16" for p in w.grace) + " } "


def _tempo(score: Score, qpm: int) -> str:
    """``\\tempo`` in the beat's unit (a dotted quarter in 6/8, a half in 2/2)."""
    beat = score.time_signature.beat_ticks
    unit = {6: "8", 12: "4", 18: "4.", 24: "2", 36: "2."}.get(beat, "4")
    quarters = {"8": 0.5, "4": 1.0, "4.": 1.5, "2": 2.0, "2.": 3.0}[unit]
    return f"\\tempo {unit} = {round(qpm / quarters)}"


def _partial(score: Score) -> str:
    """``\\partial`` for a pickup bar, in 16ths (a pickup is a whole number of them)."""
    if not score.pickup:
        return ""
    sixteenths = (score.time_signature.bar_ticks - score.pickup) // (TICKS_PER_QUARTER // 4)
    return f" \\partial 16*{sixteenths}"


def _key(key: KeySignature) -> str:
    tonic = key.tonic
    return f"\\key {NOTE_NAMES[STEPS.index(tonic[0])] + ALTER_SUFFIX[tonic.count('#') - tonic.count('b')]} \\{key.mode}"


def _voice_bars(bars: list[list[Written]], score: Score, marks: dict[tuple[int, int], list[str]],
                tempo_marks: dict[int, int], second_voice: bool, clefs: dict[int, str] | None = None,
                ottavas: dict[int, int] | None = None) -> list[str]:
    """Each bar of one voice as LilyPond tokens. A second voice's rests are spacers: it comes and
    goes with the music, and its rests would only clutter the staff."""
    ts = score.time_signature
    bar_length = f"1*{ts.numerator}/{ts.denominator}"
    keys = dict(score.key_changes)
    out = []
    for number, bar in enumerate(bars):
        if second_voice and all(w.is_rest for w in bar):
            ticks = sum(w.ticks for w in bar)
            out.append(f"s4*{ticks}/{TICKS_PER_QUARTER}")
            continue
        tokens = [f"\\clef {clefs[number]}"] if clefs and number in clefs else []
        if not second_voice and number in keys:
            tokens.append(_key(keys[number]))
        if ottavas and number in ottavas:
            tokens.append(f"\\ottava #{ottavas[number]}")
        if number in tempo_marks:
            tokens.append(_tempo(score, tempo_marks[number]))
        for i, w in enumerate(bar):
            if w.tuplet_start:
                tokens.append("\\tuplet 3/2 {")
            tokens.append(_written(w, bar_length, marks.get((number, i), []), "s" if second_voice else "r"))
            if w.tuplet_stop:
                tokens.append("}")
        out.append(" ".join(tokens))
    return out


def _staff(index: int, name: str, score: Score, tempo_marks: dict[int, int]) -> str:
    """One staff: a single voice, or two voices (stems up and down) where it has a second one."""
    staff, ts = score.staves[index], score.time_signature
    voices = [written_bars(events, ts, score.n_bars, score.pickup) for events in staff.voices]
    marks = staff_marks(voices[0], index, score)
    first = _voice_bars(voices[0], score, marks, tempo_marks, second_voice=False,
                        clefs=clef_changes(staff, ts, score.n_bars), ottavas=ottava_changes(staff, index, ts, score.n_bars))
    head = f"    \\new Staff = \"{name}\" "
    if len(voices) == 1:
        body = "\n".join(f"    {bar} | % {n}" for n, bar in enumerate(first, start=1))
        return f"{head}{{\n    \\clef {staff.clef} \\global\n{body}\n    \\bar \"|.\"\n    }}"
    second = _voice_bars(voices[1], score, {}, {}, second_voice=True)
    # Stems go up and down only in bars where the second voice plays.
    silent = [all(w.is_rest for w in bar) for bar in voices[1]]
    stems = [ONE_VOICE if quiet else VOICE_ONE for quiet in silent]
    upper = "\n".join(f"      {stem} {bar} | % {n}" for n, (stem, bar) in enumerate(zip(stems, first), start=1))
    lower = "\n".join(f"      {bar} | % {n}" for n, bar in enumerate(second, start=1))
    return (f"{head}<<\n    {{ \\clef {staff.clef} \\global }}\n"
            f"    \\new Voice = \"{name}1\" {{\n{upper}\n      \\bar \"|.\"\n    }}\n"
            f"    \\new Voice = \"{name}2\" {{ \\voiceTwo\n{lower}\n    }}\n    >>")


def credit(score: Score) -> str:
    """The small line saying how the score was made (and from which link)."""
    return f"{CREDIT} from {score.url}" if score.url else CREDIT


def _title(text: str) -> str:
    """The header's title: the text as a string literal, inside a smaller-font markup when long.

    >>> _title("Minuet")
    '"Minuet"'
    >>> print(_title("x" * 112)[:23], len(_title("x" * 200)))
    \\markup \\fontsize #-6.0 138
    """
    if len(text) <= TITLE_FIT_CHARS:
        return lilypond_string(text)
    size = max(MIN_TITLE_SIZE, -6.0 * math.log2(len(text) / TITLE_FIT_CHARS))
    longest = int(TITLE_FIT_CHARS * 2 ** (-MIN_TITLE_SIZE / 6))
    if len(text) > longest:
        text = text[: longest - 1].rstrip() + "\u2026"
    return f"\\markup \\fontsize #{size:.1f} {lilypond_string(text)}"


def _recording(score: Score) -> str:
    return f"\n  subtitle = {lilypond_string('Recording: ' + score.uploader)}" if score.uploader else ""


def lilypond_source(score: Score) -> str:
    """The whole ``.ly`` file for ``score``: title, key, meter, tempo, a piano staff."""
    ts, key = score.time_signature, score.key
    (_, first), *later = score.marks
    marks_by_staff = (dict(later), {})  # later marks are printed once, above the upper staff
    staves = "\n".join(_staff(index, name, score, marks) for index, (name, marks) in enumerate(zip(STAFF_NAMES, marks_by_staff)))
    return f"""\\version "{LILYPOND_VERSION}"
\\header {{
  title = {_title(score.title)}{_recording(score)}
  tagline = {lilypond_string(credit(score))}
}}
global = {{
  {_key(key)}
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


#: What LilyPond prints, exiting 0, when the score it was given is wrong: a bar whose notes do not
#: add up to the time signature, or a state its own code did not expect.
LILYPOND_PROBLEMS = ("warning:", "programming error:")


@dataclass(frozen=True)
class Limits:
    """What one LilyPond run may use (a server's guard against a score that runs away): CPU
    seconds, address space, and the size of any one file it writes."""

    cpu_s: int = 120
    memory_bytes: int = 4_000_000_000
    output_bytes: int = 200_000_000

    def prefix(self) -> list[str]:
        """``prlimit`` (util-linux) sets them on the child alone: a ``preexec_fn`` doing it is
        unsafe in a program running threads (a server)."""
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            raise ToolError("prlimit not found (it limits LilyPond's resources): install util-linux")
        return [prlimit, f"--cpu={self.cpu_s}",
                f"--as={self.memory_bytes}", f"--fsize={self.output_bytes}", "--"]


def render_pdf(source: str, timeout_s: float = RENDER_TIMEOUT_S, warnings: list[str] | None = None,
               limits: Limits | None = None) -> bytes:
    """Engrave LilyPond ``source`` and return the PDF's bytes (work happens in a private folder),
    with ``limits`` on what LilyPond may use, if given.

    LilyPond's warnings (failed bar checks, programming errors) do not stop it: each is appended
    to ``warnings`` as ``LilyPond: line N: ...`` (lines of ``source``).
    """
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-ly-") as tmp:
        ly = Path(tmp) / "score.ly"
        ly.write_text(source, encoding="utf-8")
        cmd = [lilypond_exe(), "-dno-point-and-click", "--pdf", "-o", str(Path(tmp) / "score"), str(ly)]
        cmd = (limits.prefix() if limits is not None else []) + cmd
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"LilyPond took longer than {timeout_s:.0f} s and was stopped") from exc
        pdf = Path(tmp) / "score.pdf"
        if proc.returncode != 0 or not pdf.exists():
            errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
            raise ToolError("LilyPond failed: " + (errors[0] if errors else proc.stderr.strip()[-300:]))
        if warnings is not None:
            warnings.extend(lilypond_problems(proc.stderr, str(ly)))
        return pdf.read_bytes()


def lilypond_problems(stderr: str, path: str) -> list[str]:
    """LilyPond's warnings and programming errors in ``stderr``, located by line in the source
    at ``path`` (the private copy's name means nothing to a user).

    >>> lilypond_problems("/tmp/x/score.ly:2:22: warning: barcheck failed at: 3/4\\n{ c4\\n", "/tmp/x/score.ly")
    ['LilyPond: line 2: warning: barcheck failed at: 3/4']
    """
    found = []
    for line in stderr.splitlines():
        if not any(mark in line for mark in LILYPOND_PROBLEMS):
            continue
        if line.startswith(path + ":"):
            where, _, message = line[len(path) + 1 :].partition(": ")
            line = f"line {where.split(':')[0]}: {message}"
        found.append(f"LilyPond: {line.strip()}")
    return found
