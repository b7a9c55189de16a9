"""Chunked transcription end to end: executors agree, a killed run resumes, and the work folder
is left clean."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import onset_f1, run_cli
from kimiwonosete.pipeline import transcribe
from kimiwonosete.pipeline.progress import QuietReporter

CHUNK_S = 12.0  # the 47 s recording below becomes four chunks


def test_executors_and_worker_counts_give_the_same_notes(minuets_flac: Path, tmp_path: Path) -> None:
    runs = {
        name: transcribe(minuets_flac, None, model="basic-pitch", chunk_s=CHUNK_S, workdir=tmp_path / name, **kw)
        for name, kw in {
            "one worker": {"workers": 1},
            "two workers": {"workers": 2},
            "ray": {"executor": "ray", "workers": 2},
        }.items()
    }
    assert {r.chunks["total"] for r in runs.values()} == {4}
    single = transcribe(minuets_flac, None, model="basic-pitch", chunk_s=1000, workdir=tmp_path / "single")
    assert single.chunks["total"] == 1
    # Workers with one thread each compute bit for bit alike (Ray's actors and the local pool).
    assert runs["ray"].performance.notes == runs["two workers"].performance.notes
    one, two = runs["one worker"].performance.notes, runs["two workers"].performance.notes
    assert [(n.pitch, n.velocity) for n in one] == [(n.pitch, n.velocity) for n in two]
    assert max(abs(a.onset - b.onset) + abs(a.offset - b.offset) for a, b in zip(one, two)) < 1e-6
    # basic-pitch's 2 s windows fall elsewhere in a chunk than in one pass, which moves a few weak
    # notes (none at the borders here); benchmarks/scale.py measures Transkun's agreement.
    assert onset_f1(single.performance.notes, two) >= 0.97
    assert all(not any((tmp_path / name).iterdir()) for name in runs)  # work folders removed


def _checkpoints(workdir: Path) -> list[Path]:
    return list(workdir.glob("*/chunks/*.json"))


def test_a_killed_run_resumes_with_only_the_missing_chunks(minuets_flac: Path, tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    args = ["transcribe", minuets_flac, "-o", out, "--formats", "performance,mid", "--workers", "1",
            "--chunk-seconds", str(CHUNK_S), "--workdir", work, "--json"]
    proc = subprocess.Popen([sys.executable, "-m", "kimiwonosete", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while len(_checkpoints(work)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(_checkpoints(work))
    assert 2 <= finished < 4, "the run should have been killed half-way"
    assert not out.exists() or not any(out.iterdir()), "nothing may be written before the run completes"

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["chunks"] == {"total": 4, "reused": finished}
    assert not (work / "lock").exists() and not _checkpoints(work)

    fresh = run_cli(*args[:-1], "-o", tmp_path / "fresh", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["chunks"] == {"total": 4, "reused": 0}
    for suffix in (".performance.mid", ".mid"):
        assert (out / f"minuets{suffix}").read_bytes() == (tmp_path / "fresh" / f"minuets{suffix}").read_bytes()


class StopAfterOneChunk(QuietReporter):
    """Presses Ctrl-C as soon as the first chunk is done."""

    def advance(self, done: int, total: int) -> None:
        if done >= 1 and total > 1:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_finished_chunks_for_resume_only(example_flac: Path, tmp_path: Path) -> None:
    kw = {"model": "basic-pitch", "chunk_s": 5.0, "workers": 1, "workdir": tmp_path}
    with pytest.raises(KeyboardInterrupt):
        transcribe(example_flac, None, reporter=StopAfterOneChunk(), **kw)
    assert len(_checkpoints(tmp_path)) == 1
    again = transcribe(example_flac, None, **kw)
    assert again.chunks == {"total": 3, "reused": 0}
    assert any("--resume" in w for w in again.warnings)
    with pytest.raises(KeyboardInterrupt):
        transcribe(example_flac, None, reporter=StopAfterOneChunk(), **kw)
    resumed = transcribe(example_flac, None, resume=True, **kw)
    assert resumed.chunks == {"total": 3, "reused": 1}
    assert resumed.performance.notes == again.performance.notes
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("how", ["RAY_ADDRESS", "ray://"])
def test_a_cluster_address_nothing_answers_at_is_one_clear_error(
    how: str, example_flac: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if how == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        executor = "ray"
    else:
        executor = f"ray://127.0.0.1:{port}"
    proc = run_cli("transcribe", example_flac, "-o", tmp_path, "--model", "basic-pitch", "--chunk-seconds", "5",
                   "--executor", executor, "--workdir", tmp_path / "work", timeout=120)
    assert proc.returncode == 1
    assert f"cannot reach the Ray cluster at {executor if how == 'ray://' else f'127.0.0.1:{port}'}" in proc.stderr
    assert "Traceback" not in proc.stderr and not list(tmp_path.glob("*.pdf"))
