from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from helpers import climbing_bass_score, climbing_treble_score, high_treble_score, short_marker, two_voice_score
from kimiwonosete.engrave.lilypond import lilypond_source, render_pdf
from kimiwonosete.errors import ToolError
from kimiwonosete.notes import Note, Performance
from kimiwonosete.score.build import build_score

# MARKER is replaced by an absolute path: LilyPond runs in a private folder, so a relative
# "touch" would leave no trace where the test looks.
HOSTILE = [
    '"#(system "touch MARKER")',
    '#(system "touch MARKER")',
    '\\" } #(system "touch MARKER") \\header { title = "',
    '$(system "touch MARKER")',
    'x" #(begin (system "touch MARKER") "y',
]


def _score(title: str):
    notes = [Note(0.5 * i, 0.5 * i + 0.45, 60 + (i % 8), 80) for i in range(16)]
    return build_score(Performance(notes, [], duration=9.0), title)


def _pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "score.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_title_runs_nothing_and_prints_literally(title: str, tmp_path: Path) -> None:
    marker = short_marker()
    title = title.replace("MARKER", str(marker))
    pdf = render_pdf(lilypond_source(_score(title)))
    assert not marker.exists()
    text = " ".join(_pdf_text(pdf, tmp_path).split())
    assert " ".join(title.split()) in text


@pytest.mark.parametrize("title", ["442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.performance",
                                   "A very long video title, " * 8])
def test_a_long_title_stays_on_the_page(title: str, tmp_path: Path) -> None:
    path = tmp_path / "score.pdf"
    path.write_bytes(render_pdf(lilypond_source(_score(title))))
    boxes = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"], capture_output=True, text=True,
                           check=True).stdout
    width = float(re.search(r'<page width="([0-9.]+)"', boxes).group(1))
    words = re.findall(r'<word xMin="([0-9.-]+)" yMin="[0-9.-]+" xMax="([0-9.-]+)" yMax="[0-9.-]+">([^<]*)</word>', boxes)
    first = title.split()[0]
    shown = [(float(a), float(b)) for a, b, w in words if w in title or first.startswith(w)]
    assert shown and all(0 <= a and b <= width for a, b in shown)


def test_a_links_hostile_uploader_and_address_print_literally(tmp_path: Path) -> None:
    marker = short_marker()
    score = _score("Nocturne")
    score.uploader = f'#(system "touch {marker}")'
    score.url = f'https://example.org/#(system "touch {marker}")'
    text = " ".join(_pdf_text(render_pdf(lilypond_source(score)), tmp_path).split())
    assert not marker.exists()
    assert f'Recording: #(system "touch {marker}")' in text
    assert f'Transcribed automatically by KimiWoNosete from https://example.org/#(system "touch {marker}")' in text


def test_source_writes_every_bar_and_spells_in_the_key() -> None:
    e_flat = [63, 65, 67, 68, 70, 72, 74, 75]
    notes = [Note(0.5 * i, 0.5 * i + 0.45, e_flat[i % 8], 80) for i in range(32)]
    score = build_score(Performance(notes, [], duration=17.0), "scale")
    source = lilypond_source(score)
    # An Eb major scale is C minor's notes too: either way three flats.
    assert "\\key ees \\major" in source or "\\key c \\minor" in source
    assert f"| % {score.n_bars}" in source and f"| % {score.n_bars + 1}" not in source
    assert "ees'" in source and "aes'" in source and "dis'" not in source


def test_the_marker_would_catch_unescaped_scheme(tmp_path: Path) -> None:
    """Unescaped, the same payload does run: so the tests above can fail."""
    marker = short_marker()
    render_pdf(f'\\version "2.24.0"\n#(system "touch {marker}")\n{{ c4 }}')
    assert marker.exists()


def test_lilypond_errors_are_reported_clearly() -> None:
    with pytest.raises(ToolError, match="LilyPond failed"):
        render_pdf('\\version "2.24.0"\n{ c4 d4 e4 \\undefinedcommand }')


def test_two_voices_engrave_with_stems_apart_only_where_both_play() -> None:
    source = lilypond_source(two_voice_score())
    upper = source[source.index('\\new Staff = "upper"'):source.index('\\new Staff = "lower"')]
    assert '\\new Voice = "upper1"' in upper and '\\new Voice = "upper2"' in upper
    assert "\\voiceOne e''2" in upper and "\\oneVoice <g' b'>1" in upper  # bar 2: one voice, neutral stems
    assert "s4*48/12" in upper  # the second voice is silent there
    assert render_pdf(source).startswith(b"%PDF")


def test_lower_staff_changes_clef_for_a_high_passage_and_back() -> None:
    source = lilypond_source(climbing_bass_score())
    lower = source[source.index('\\new Staff = "lower"'):]
    assert re.findall(r"\\clef (\w+)", lower) == ["bass", "treble", "bass"]
    assert render_pdf(source).startswith(b"%PDF")


def test_high_passage_gets_an_octave_sign() -> None:
    source = lilypond_source(high_treble_score())
    upper = source[source.index('\\new Staff = "upper"'):source.index('\\new Staff = "lower"')]
    assert re.findall(r"\\ottava #(-?\d)", upper) == ["1", "0"]
    assert "\\ottava" not in source[source.index('\\new Staff = "lower"'):]
    assert render_pdf(source).startswith(b"%PDF")


def test_a_passage_climbing_past_8va_gets_15ma() -> None:
    source = lilypond_source(climbing_treble_score())
    upper = source[source.index('\\new Staff = "upper"'):source.index('\\new Staff = "lower"')]
    assert re.findall(r"\\ottava #(-?\d)", upper) == ["1", "2", "0"]
    assert render_pdf(source).startswith(b"%PDF")


def test_a_failed_bar_check_is_a_warning() -> None:
    warnings: list[str] = []
    pdf = render_pdf('\\version "2.24.0"\n{ \\time 4/4 c4 d4 e4 | f4 g4 a4 b4 | }\n', warnings=warnings)
    assert pdf.startswith(b"%PDF")
    assert warnings == ["LilyPond: line 2: warning: barcheck failed at: 3/4"]


@pytest.mark.parametrize("make", [lambda: _score("Scale"), two_voice_score, climbing_bass_score, high_treble_score])
def test_our_scores_pass_every_bar_check(make) -> None:
    warnings: list[str] = []
    render_pdf(lilypond_source(make()), warnings=warnings)
    assert warnings == []


def test_a_built_minuet_passes_every_bar_check(example_notes: list[Note]) -> None:
    """A real score: pickup, tuplets or ties wherever the builder put them, pedal and dynamics."""
    from kimiwonosete.notes import Pedal

    played = Performance(list(example_notes), [Pedal(1.0, 2.5)], duration=max(n.offset for n in example_notes) + 0.5)
    warnings: list[str] = []
    render_pdf(lilypond_source(build_score(played, "Minuet")), warnings=warnings)
    assert warnings == []
