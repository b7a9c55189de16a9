"""The service under load: a real ``kimiwonosete serve`` on loopback, ``--jobs`` uploads of a short
recording from ``--clients`` concurrent clients, each polling its jobs' status until they end.
Reports throughput, API latency (p50/p95 of every request, and of those made while chunks were
being transcribed), the server's peak memory (its whole process tree) and errors. Bounded: at
most ``--jobs`` jobs and ``--timeout`` seconds.

``--compare`` then times one file end to end through the API (twice: the first job's workers load
the model, the second finds it loaded) and through ``kimiwonosete transcribe``, one after the
other in this run, with the same number of workers.

    .venv/bin/python benchmarks/load.py --jobs 20 --clients 4 --workers 2
    .venv/bin/python benchmarks/load.py --jobs 0 --compare ../shared/eval/maps/SOME.flac --seconds 180
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from scale import _tree_rss, measured

POLL_S = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_server(data: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = open(data.parent / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kimiwonosete", "serve", "--port", str(port), "--data-dir", str(data),
                             "--workers", str(workers), "--rate-limit", "0", "--log-format", "json"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


class Load:
    def __init__(self, url: str, audio: bytes, model: str, deadline: float) -> None:
        self.url, self.audio, self.model, self.deadline = url, audio, model, deadline
        self.latencies: list[tuple[float, float, str]] = []  # (when, seconds, kind)
        self.errors: list[str] = []
        self.ends: dict[str, tuple[float, str]] = {}
        self.transcribing: list[tuple[float, float]] = []  # (when, 1 if some job was transcribing)
        self.lock = threading.Lock()

    def _timed(self, client: httpx.Client, kind: str, method: str, path: str, **kw: object) -> httpx.Response:
        t0 = time.perf_counter()
        answer = client.request(method, path, **kw)  # type: ignore[arg-type]
        with self.lock:
            self.latencies.append((time.monotonic(), time.perf_counter() - t0, kind))
        return answer

    def client(self, jobs: int) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            mine = []
            for _ in range(jobs):
                answer = self._timed(client, "submit", "POST", "/jobs", files={"file": ("piece.flac", self.audio)},
                                     data={"model": self.model})
                if answer.status_code != 202:
                    self.errors.append(f"POST {answer.status_code}: {answer.text[:200]}")
                    continue
                mine.append(answer.json()["id"])
            while mine and time.monotonic() < self.deadline:
                for job_id in list(mine):
                    answer = self._timed(client, "status", "GET", f"/jobs/{job_id}")
                    if answer.status_code != 200:
                        self.errors.append(f"GET {answer.status_code}")
                        continue
                    job = answer.json()
                    if job["state"] == "transcribing":
                        with self.lock:
                            self.transcribing.append((time.monotonic(), 1.0))
                    if job["state"] in ("done", "failed", "cancelled"):
                        self.ends[job_id] = (time.monotonic(), job["state"])
                        if job["state"] != "done":
                            self.errors.append(f"job {job_id} {job['state']}: {job.get('reason')}")
                        mine.remove(job_id)
                time.sleep(POLL_S)
            for job_id in mine:
                self.errors.append(f"job {job_id} did not end in time")


def run_load(url: str, server: subprocess.Popen[bytes], audio: Path, jobs: int, clients: int, model: str,
             timeout_s: float) -> dict:
    load = Load(url, audio.read_bytes(), model, time.monotonic() + timeout_s)
    shares = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=load.client, args=(n,)) for n in shares if n]
    peak = [0]
    running = threading.Event()

    def sample() -> None:
        while not running.is_set():
            peak[0] = max(peak[0], _tree_rss(server.pid)[0])
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    t0 = time.monotonic()
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    running.set()
    sampler.join()
    busy = [w for w, _ in load.transcribing]
    during = [s for w, s, _ in load.latencies if busy and min(busy) <= w <= max(busy)]
    done = sum(1 for _, state in load.ends.values() if state == "done")
    return {
        "jobs": jobs, "clients": clients, "model": model, "input_s": _duration(audio),
        "done": done, "errors": load.errors, "wall_s": round(wall, 2), "jobs_per_min": round(60 * done / wall, 2),
        "api_requests": len(load.latencies),
        "api_p50_ms": round(1000 * _percentile([s for _, s, _ in load.latencies], 0.5), 1),
        "api_p95_ms": round(1000 * _percentile([s for _, s, _ in load.latencies], 0.95), 1),
        "api_p95_while_transcribing_ms": round(1000 * _percentile(during, 0.95), 1),
        "api_p50_while_transcribing_ms": round(1000 * _percentile(during, 0.5), 1),
        "submit_p95_ms": round(1000 * _percentile([s for _, s, k in load.latencies if k == "submit"], 0.95), 1),
        "peak_server_tree_gb": round(peak[0] / 1e9, 3),
    }


def _duration(audio: Path) -> float:
    from kimiwonosete.audio import ffmpeg_exe

    probe = subprocess.run([ffmpeg_exe(), "-nostdin", "-i", str(audio), "-f", "null", "-"], capture_output=True, text=True)
    stamp = [line for line in probe.stderr.splitlines() if "time=" in line][-1].split("time=")[1].split()[0]
    h, m, s = stamp.split(":")
    return round(int(h) * 3600 + int(m) * 60 + float(s), 1)


def _api_job(client: httpx.Client, audio: Path, model: str) -> dict:
    t0 = time.monotonic()
    job_id = client.post("/jobs", files={"file": (audio.name, audio.read_bytes())}, data={"model": model}).json()["id"]
    while (job := client.get(f"/jobs/{job_id}").json())["state"] not in ("done", "failed", "cancelled"):
        time.sleep(0.2)
    return {"state": job["state"], "end_to_end_s": round(time.monotonic() - t0, 2), "stages_s": job["timings_s"]}


def compare(url: str, audio: Path, model: str, workers: int, tmp: Path) -> dict:
    """The same file through the API twice (the first job's pool workers load the model, as the CLI
    does every run; the second finds it loaded, as a running service does), then through the CLI."""
    with httpx.Client(base_url=url, timeout=120) as client:
        first = _api_job(client, audio, model)
        second = _api_job(client, audio, model)
    cli = measured([sys.executable, "-m", "kimiwonosete", "transcribe", str(audio), "-o", str(tmp / "cli"), "--model", model,
                    "--workers", str(workers), "--json", "--workdir", str(tmp / "work")])
    summary = json.loads(cli.pop("stdout"))
    return {"input": audio.name, "input_s": _duration(audio), "model": model, "workers": workers,
            "api_first_job": first, "api_second_job": second,
            "cli": {"end_to_end_s": round(cli["wall_s"], 2), "stages_s": summary["timings_s"],
                    "peak_tree_gb": round(cli["peak_tree_gb"], 3)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="transkun")
    parser.add_argument("--input", type=Path, help="the short recording (default: the 13 s example minuet)")
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--compare", type=Path, metavar="AUDIO", help="time one job through the API and the CLI on this file")
    parser.add_argument("--seconds", type=float, help="take the first SECONDS of --compare's file")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kimiwonosete-load-") as tmp_name:
        tmp = Path(tmp_name)
        audio = args.input
        if audio is None:
            from kimiwonosete.examples import write_example

            audio = write_example(tmp / "minuet.flac")
        server, url = start_server(tmp / "data", args.workers)
        try:
            report: dict = {}
            if args.jobs:
                report["load"] = run_load(url, server, audio, args.jobs, args.clients, args.model, args.timeout)
                print(json.dumps(report["load"], indent=2), flush=True)
            if args.compare:
                piece = args.compare
                if args.seconds:
                    from kimiwonosete.audio import ffmpeg_exe

                    piece = tmp / f"{args.compare.stem}-{args.seconds:g}s.flac"
                    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(args.compare), "-t",
                                    str(args.seconds), "-c:a", "flac", str(piece)], check=True)
                report["compare"] = compare(url, piece, args.model, args.workers, tmp)
                print(json.dumps(report["compare"], indent=2), flush=True)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
