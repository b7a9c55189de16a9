"""Shared fixtures: the example recording (made by FluidSynth) and its notes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimiwonosete.audio import ffmpeg_exe
from kimiwonosete.examples import example_midi, write_example
from kimiwonosete.notes import Note


@pytest.fixture(scope="session")
def example_flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example") / "minuet.flac")


@pytest.fixture(scope="session")
def minuets_flac(example_flac: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example minuet three times over (about 47 s): several chunks."""
    path = tmp_path_factory.mktemp("long") / "minuets.flac"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-stream_loop", "2", "-i", str(example_flac),
                    "-c:a", "flac", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def example_notes() -> list[Note]:
    """The notes the example recording was rendered from (its ground truth)."""
    midi = example_midi()
    return sorted(
        (Note(n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes),
        key=lambda n: (n.onset, n.pitch),
    )


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Work folders of runs without --workdir go to a temporary cache, not the user's."""
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def s3_url() -> Iterator[tuple[str, dict]]:
    """A bucket on moto's S3 server, started here on loopback, and the s3fs options to reach it (the
    store's tests and the service's share it)."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}}
    import boto3

    boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="kimiwonosete-test")
    yield "s3://kimiwonosete-test/jobs", options
    server.stop()
