"""Load on `facestudio serve`: many concurrent HTTP clients on loopback against the bundled model.

Starts the server in a subprocess (uvicorn, as a user would), warms it up, then lets
`--clients` threads submit generations until `--jobs` have been accepted. Each client behaves
as the documented client does: on 429 it waits `Retry-After` and tries again; once accepted it
polls its job and downloads every image. Checks: no 5xx answer at all, every accepted job
completes, the queue never holds more than its bound (sampled from /healthz), and the server's
resident memory after the jobs is within 10 % of the warmed-up value (memory is also
recorded after every 50 jobs, to show whether it keeps growing or has levelled off).

    python benchmarks/serve_load.py [--clients 50] [--jobs 200] [--steps 4]
        [--out benchmarks/results/serve_load.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from PIL import Image

from facestudio.app.client import ClientError, FaceStudioClient
from facestudio.interfaces.example_photo import example_photo
from report import write_report

WARM_UP_JOBS = 25
"""Jobs run under the same concurrent load before memory is measured: the server's thread
pools and their memory pools reach their working size here, once."""
CHECKPOINTS = (50, 100, 150, 200)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=200, help="accepted jobs to complete")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per job")
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/serve_load.json")
    args = parser.parse_args()

    with tempfile_photo() as photo, running_server(args.queue_size) as (server, url):
        client = FaceStudioClient(url, timeout=120)
        rss_loaded = rss_kib(server.pid)
        Load(client, photo, args, WARM_UP_JOBS, server.pid).run()
        rss_warm = rss_kib(server.pid)
        load = Load(client, photo, args, args.jobs, server.pid)
        load.run()
        rss_after = rss_kib(server.pid)
    queue_peak = load.queue_peak

    results = load.results
    latencies = sorted(r["latency_s"] for r in results if r["outcome"] == "succeeded")
    report = {
        "clients": args.clients,
        "jobs_accepted": load.accepted,
        "jobs_succeeded": len(latencies),
        "jobs_failed": sum(r["outcome"] != "succeeded" for r in results),
        "answers_429": load.statuses[429],
        "answers_5xx": sum(n for status, n in load.statuses.items() if status >= 500),
        "answers_by_status": {str(k): v for k, v in sorted(load.statuses.items())},
        "queue_bound": args.queue_size,
        "queue_waiting_peak": queue_peak,
        "steps_per_job": args.steps,
        "wall_s": round(load.wall_s, 1),
        "jobs_per_s": round(len(latencies) / load.wall_s, 3),
        "latency_s_p50": round(statistics.median(latencies), 2) if latencies else None,
        "latency_s_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2)
        if latencies
        else None,
        "rss_mib_model_loaded": round(rss_loaded / 1024, 1),
        "rss_mib_warm": round(rss_warm / 1024, 1),
        "rss_mib_after_jobs": round(rss_after / 1024, 1),
        "rss_growth_pct": round(100 * (rss_after - rss_warm) / rss_warm, 2),
        "rss_mib_after_n_jobs": {str(n): round(kib / 1024, 1) for n, kib in load.rss_at.items()},
        "warm_up_jobs": WARM_UP_JOBS,
        "cpu_count": os.cpu_count(),
    }
    report["checks"] = {
        "no_5xx": report["answers_5xx"] == 0,
        "every_accepted_job_completed": report["jobs_succeeded"] == load.accepted,
        "queue_bound_held": queue_peak <= args.queue_size,
        "rss_growth_under_10_pct": report["rss_growth_pct"] < 10,
    }
    for key, value in report.items():
        print(f"{key:28} {value}")
    write_report(report, args.out)
    return 0 if all(report["checks"].values()) else 1


class Load:
    """`clients` threads submitting until `jobs` are accepted; every outcome recorded, and the
    queue's length sampled from /healthz meanwhile."""

    def __init__(self, client: FaceStudioClient, photo: Path, args, jobs: int, pid: int) -> None:
        self.client, self.photo, self.args = client, photo, args
        self.jobs, self.pid = jobs, pid
        self.lock = threading.Lock()
        self.accepted = 0
        self.completed = 0
        self.rss_at: dict[int, int] = {}
        self.statuses: Counter[int] = Counter()
        self.results: list[dict] = []
        self.queue_peak = 0
        self.wall_s = 0.0

    def run(self) -> None:
        done = threading.Event()
        sampler = threading.Thread(target=self.sample_queue, args=(done,))
        sampler.start()
        start = time.monotonic()
        clients = [
            threading.Thread(target=self.client_loop, args=(n,)) for n in range(self.args.clients)
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        self.wall_s = time.monotonic() - start
        done.set()
        sampler.join()

    def client_loop(self, number: int) -> None:
        seed = number * 1000
        while True:
            with self.lock:
                if self.accepted >= self.jobs:
                    return
            start = time.monotonic()
            try:
                job = self.client.submit(
                    [[self.photo]], seed=seed, num_inference_steps=self.args.steps
                )
            except ClientError as exc:
                self.count(exc.status)
                time.sleep(exc.retry_after or 1.0)
                continue
            with self.lock:
                self.accepted += 1  # a few may pass the target at once: all are followed
                self.statuses[202] += 1
            self.results.append(self.follow(job["id"], start))
            with self.lock:
                self.completed += 1
                if self.completed in CHECKPOINTS:
                    self.rss_at[self.completed] = rss_kib(self.pid)
            seed += 1

    def follow(self, job_id: str, start: float) -> dict:
        try:
            job = self.client.wait(job_id, timeout=900, poll_s=0.5)
            for index in range(len(job["images"])):
                data = self.client.image(job_id, index)
                self.count(200)
                if "facestudio" not in Image.open(io.BytesIO(data)).info:
                    return {"outcome": "unlabelled image", "latency_s": 0.0}
            return {"outcome": "succeeded", "latency_s": time.monotonic() - start}
        except ClientError as exc:
            self.count(exc.status)
            return {"outcome": f"failed: {exc}", "latency_s": 0.0}

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    def sample_queue(self, done: threading.Event) -> None:
        while not done.wait(0.2):
            try:
                waiting = self.client.health()["queue"]["waiting"]
            except (ClientError, OSError):
                continue
            self.queue_peak = max(self.queue_peak, waiting)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc (Linux only)")


class running_server:
    """`facestudio serve` in a subprocess on a free loopback port, stopped on exit."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size

    def __enter__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "facestudio.interfaces.cli",
            "serve",
            "--port",
            str(port),
            "--queue-size",
            str(self.queue_size),
        ]
        self.process = subprocess.Popen(command)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
                    json.load(answer)
                return self.process, url
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise RuntimeError("the server did not answer /healthz within 300 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


class tempfile_photo:
    """The sample portrait as a JPEG file (removed afterwards)."""

    def __enter__(self) -> Path:
        import tempfile

        handle, name = tempfile.mkstemp(suffix=".jpg", prefix="serve-load-")
        os.close(handle)
        self.path = Path(name)
        Image.fromarray(example_photo()).save(self.path, quality=90)
        return self.path

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
