"""The store stages keep their work in: a local folder, and S3 (moto's server on 127.0.0.1,
through s3fs), with the stages run against each and workers in other processes reading it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.pipeline import stages
from kimiwonosete.pipeline.executors import ChunkJob, LocalExecutor
from kimiwonosete.pipeline.store import Store
from kimiwonosete.pipeline.workfolder import Work
from kimiwonosete.score.build import build_score
from kimiwonosete.transcription import get_transcriber
from kimiwonosete.transcription.chunks import Chunk


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return Store(tmp_path / "store")
    url, options = request.getfixturevalue("s3_url")
    return Store(f"{url}/{tmp_path.name}", **options)


def test_objects_are_written_read_listed_and_removed(store: Store) -> None:
    ref = store.put("job/a/one.bin", bytes(range(256)))
    assert ref == f"{store.url}/job/a/one.bin"
    assert store.get("job/a/one.bin") == bytes(range(256)) and store.size("job/a/one.bin") == 256
    assert store.read_range("job/a/one.bin", 10, 14) == bytes([10, 11, 12, 13])
    store.put("job/b.bin", b"x")
    assert store.keys("job") == ["job/a/one.bin", "job/b.bin"]
    assert store.get("job/none") is None and store.size("job/none") is None
    store.remove("job")
    assert store.keys("job") == [] and store.get("job/b.bin") is None
    store.remove("job")  # removing what is not there is not an error


def test_a_failed_write_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.writer("job/half.bin") as fh:
            fh.write(b"x" * 100_000)
            raise RuntimeError("killed half-way")
    assert store.get("job/half.bin") is None and store.keys("job") == []


def test_keys_cannot_climb_out_of_the_store(store: Store) -> None:
    for key in ("../x", "a/../../x", "/etc/passwd", "a//b", ""):
        with pytest.raises(ValueError, match="not a store key"):
            store.put(key, b"x")


def test_a_store_travels_to_another_process_by_its_url(store: Store) -> None:
    store.put("k/v", b"42")
    again = pickle.loads(pickle.dumps(store))
    assert again.url == store.url and again.get("k/v") == b"42"


def test_a_jobs_work_round_trips_through_the_store(store: Store) -> None:
    work = Work(store, "0123abcd")
    chunk = Chunk(0, 0, 100, 0, 100)
    played = Performance([Note(0.25, 1.5, 60, 70), Note(1.0, 2.0, 64, 80)], [Pedal(0.0, 1.0)], 2.5)
    assert work.load_chunk(chunk) is None and work.finished() == 0
    work.save_chunk(chunk, played)
    assert work.load_chunk(chunk) == played and work.finished() == 1
    assert work.load_chunk(Chunk(0, 0, 90, 0, 90)) is None  # a checkpoint of another plan is not re-used
    work.save_performance(played)
    assert work.load_performance() == played
    score = build_score(played, "Two notes")
    work.save_score("s1", score)
    assert work.load_score("s1") == score and work.load_score("s2") is None
    work.remove()
    assert store.keys("0123abcd") == []


def test_the_stages_run_against_the_store_with_workers_in_other_processes(
    store: Store, example_flac: Path, tmp_path: Path
) -> None:
    """decode into the store, plan, two worker processes each reading their chunks from it,
    checkpoints, merge: the notes equal a run in this process on a local folder."""
    transcriber = get_transcriber("basic-pitch")
    source = stages.Source(example_flac)

    def run(store: Store, workers: int) -> Performance:
        work = stages.work_of(store, source, transcriber, 5.0, 0.0, None)
        samples = stages.decode(work, source, transcriber.sample_rate)
        assert stages.Samples.from_dict(samples.to_dict()) == samples
        plan = stages.plan(samples, 5.0, 2)  # the same four chunks, done by one or two workers
        job = ChunkJob("basic-pitch", "cpu", transcriber.sample_rate, work, threads=1)
        if workers == 1:
            for chunk in plan:
                stages.transcribe_one(work, chunk, job.transcriber())
        else:
            for chunk, part in LocalExecutor(workers).run(job, plan, workers):
                work.save_chunk(chunk, part)
        merged = stages.merge(work, samples, plan)
        assert work.load_performance() == merged
        return merged

    here = run(Store(tmp_path / "local"), 1)
    there = run(store, 2)
    assert len(here.notes) > 30 and there.notes == here.notes


def test_the_work_key_holds_the_models_version_and_windows(example_flac: Path, tmp_path: Path) -> None:
    from kimiwonosete.transcription.transkun import TranskunTranscriber

    store, source = Store(tmp_path), stages.Source(example_flac)
    key = lambda t, **kw: stages.work_of(store, source, t, **{"chunk_s": 60.0, "start": 0.0, "end": None, **kw}).key  # noqa: E731
    stock_windows, ours = TranskunTranscriber(hop_s=8.0, device="cpu"), TranskunTranscriber(device="cpu")
    assert ours.settings()["version"] == "2.0.1" and ours.settings()["hop_s"] == 14.0
    assert key(ours) == key(TranskunTranscriber(device="cpu"))
    assert len({key(ours), key(stock_windows), key(get_transcriber("basic-pitch")), key(ours, chunk_s=30.0),
                key(ours, start=1.0)}) == 5
