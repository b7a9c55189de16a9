from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from kimiwonosete.errors import OutputError
from kimiwonosete.examples import example_midi
from kimiwonosete.files import atomic_path, write_bytes_atomic


def test_complete_writes_appear_under_the_final_name(tmp_path: Path) -> None:
    write_bytes_atomic(tmp_path / "a.ly", b"abc")
    assert (tmp_path / "a.ly").read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["a.ly"]
    assert (tmp_path / "a.ly").stat().st_mode & 0o044  # readable by others, unlike mkstemp's 0600


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.ly").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.ly") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert (tmp_path / "a.ly").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.ly"]


def test_os_errors_become_output_errors(tmp_path: Path) -> None:
    (tmp_path / "a.ly").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        write_bytes_atomic(tmp_path / "a.ly", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["a.ly"]


def test_cli_reports_a_failed_write_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "played.mid"
    example_midi().write(str(source))
    (tmp_path / "out" / "played.ly").mkdir(parents=True)
    proc = run_cli("transcribe", source, "-o", tmp_path / "out", "--formats", "ly", "-q")
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kimiwonosete: error:"), proc.stderr
    assert not list((tmp_path / "out").glob(".*part"))
