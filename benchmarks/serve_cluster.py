"""Load on serving past one machine: two API processes and one, then two, workers on one Redis.

On loopback: a private redis-server, two `facestudio serve --redis` processes (uvicorn, two
ports), and `facestudio worker` processes with the bundled model on the CPU (one torch thread
each). The same load runs twice, first with one worker, then with two: `--clients` threads,
each bound to one of the two APIs, submit until `--jobs` are accepted or `--max-seconds` pass;
each client behaves as the documented client does (on 429 it waits `Retry-After`; once
accepted it polls its job and downloads its image). Checks: no 5xx answer, every accepted job
completes, and Redis's memory (INFO memory, used_memory) returns to its level before the load
once the results' retention time has passed (compared after each phase's results expired:
Redis's allocation grows once, by a few hundred kB with no key left to hold it, during the
first jobs, and stays at that level afterwards). Prints a table and writes JSON.

    python benchmarks/serve_cluster.py [--clients 50] [--jobs 60] [--steps 2] [--retention 20]
        [--out benchmarks/results/serve_cluster.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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

WARM_UP_JOBS = 4
EXPIRY_MARGIN_S = 5.0
"""Time past the retention for Redis's active expiry to remove the last results."""
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")
MEMORY_TOLERANCE_BYTES = 256 * 1024
"""used_memory may differ this much from its level before the load and still count as flat
(allocator pages, the stream's and sets' internal nodes)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=60, help="accepted jobs per phase")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per job")
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--retention", type=float, default=20.0, help="seconds results are kept")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="per phase")
    parser.add_argument("--out", default="benchmarks/results/serve_cluster.json")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="serve-cluster-") as folder,
        Cluster(Path(folder), args) as cluster,
    ):
        photo = Path(folder) / "photo.jpg"
        Image.fromarray(example_photo()).save(photo, quality=90)
        cluster.start_worker("w1")
        cluster.start_apis()
        memory_idle = cluster.redis_memory()
        warm_up(cluster.clients(), photo, args)
        one = Load(cluster.clients(), photo, args).run()
        memory_before = cluster.expired_memory()
        cluster.start_worker("w2")
        warm_up(cluster.clients(), photo, args)
        two = Load(cluster.clients(), photo, args).run()
        memory_loaded = cluster.redis_memory()
        memory_after = cluster.expired_memory()
        leftover_jobs = cluster.job_keys()
        workers = cluster.clients()[0].health()["queue"]["workers"]

    report = {
        "clients": args.clients,
        "api_processes": 2,
        "steps_per_job": args.steps,
        "queue_bound": args.queue_size,
        "retention_s": args.retention,
        "one_worker": one.summary(),
        "two_workers": two.summary(),
        "speedup_two_vs_one": round(two.jobs_per_s / one.jobs_per_s, 2) if one.jobs_per_s else None,
        "workers_seen_at_end": workers,
        "redis_memory_idle": memory_idle,
        "redis_memory_before": memory_before,
        "redis_memory_loaded": memory_loaded,
        "redis_memory_after_retention": memory_after,
        "job_keys_after_retention": leftover_jobs,
        "cpu_count": os.cpu_count(),
    }
    phases = (one, two)
    report["checks"] = {
        "no_5xx": all(p.fivexx == 0 for p in phases),
        "every_accepted_job_completed": all(p.succeeded == p.accepted for p in phases),
        "redis_data_flat_after_retention": abs(data(memory_after) - data(memory_before))
        <= MEMORY_TOLERANCE_BYTES,
        "no_job_left_in_redis": leftover_jobs == 0,
    }
    print_table(report)
    write_report(report, args.out)
    return 0 if all(report["checks"].values()) else 1


class Load:
    """Client threads, each on one of the APIs, submitting until `jobs` are accepted."""

    def __init__(self, clients: list[FaceStudioClient], photo: Path, args) -> None:
        self.apis, self.photo, self.args = clients, photo, args
        self.lock = threading.Lock()
        self.accepted = self.succeeded = 0
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self.wall_s = 0.0

    def run(self) -> Load:
        deadline = time.monotonic() + self.args.max_seconds
        start = time.monotonic()
        threads = [
            threading.Thread(target=self.client_loop, args=(n, deadline))
            for n in range(self.args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.wall_s = time.monotonic() - start
        return self

    @property
    def fivexx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def jobs_per_s(self) -> float:
        return self.succeeded / self.wall_s if self.wall_s else 0.0

    def client_loop(self, number: int, deadline: float) -> None:
        client = self.apis[number % len(self.apis)]
        seed = number * 1000
        while time.monotonic() < deadline:
            with self.lock:
                if self.accepted >= self.args.jobs:
                    return
            start = time.monotonic()
            try:
                job = client.submit([[self.photo]], seed=seed, num_inference_steps=self.args.steps)
            except ClientError as exc:
                self.count(exc.status)
                time.sleep(exc.retry_after or 1.0)
                continue
            with self.lock:
                self.accepted += 1
                self.statuses[202] += 1
            self.follow(client, job["id"], start)
            seed += 1

    def follow(self, client: FaceStudioClient, job_id: str, start: float) -> None:
        try:
            job = client.wait(job_id, timeout=600, poll_s=0.25)
            for index in range(len(job["images"])):
                client.image(job_id, index)
                self.count(200)
            with self.lock:
                self.succeeded += 1
                self.latencies.append(time.monotonic() - start)
        except (ClientError, TimeoutError) as exc:
            self.count(getattr(exc, "status", 0))
            with self.lock:
                self.failures.append(str(exc)[:200])

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    def summary(self) -> dict:
        latencies = sorted(self.latencies)
        return {
            "jobs_accepted": self.accepted,
            "jobs_succeeded": self.succeeded,
            "jobs_failed": len(self.failures),
            "failures": self.failures[:5],
            "answers_429": self.statuses[429],
            "answers_5xx": self.fivexx,
            "answers_by_status": {str(k): v for k, v in sorted(self.statuses.items())},
            "wall_s": round(self.wall_s, 1),
            "jobs_per_s": round(self.jobs_per_s, 3),
            "latency_s_p50": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "latency_s_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2)
            if latencies
            else None,
        }


class Cluster:
    """redis-server, the API processes and the workers, all stopped on exit."""

    def __init__(self, folder: Path, args) -> None:
        self.folder, self.args = folder, args
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def __enter__(self) -> Cluster:
        import redis

        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        port = free_port()
        address = ["--port", str(port), "--bind", "127.0.0.1"]
        self.spawn([server, *address, *NO_PERSISTENCE, "--dir", str(self.folder)], "redis")
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis = redis.Redis.from_url(self.redis_url)
        wait(lambda: self.redis.ping(), "redis-server", exceptions=(redis.ConnectionError,))
        return self

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def spawn(self, command: list[str], name: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        self.processes.append(process)
        return process

    def start_worker(self, name: str) -> None:
        cli = [sys.executable, "-m", "facestudio.interfaces.cli"]
        process = self.spawn([*cli, "worker", "--redis", self.redis_url, "--name", name], name)
        key = f"facestudio:worker:{name}"
        wait(lambda: self.redis.exists(key), f"worker {name}", process=process)

    def start_apis(self) -> None:
        cli = [sys.executable, "-m", "facestudio.interfaces.cli"]
        for number in range(2):
            port = free_port()
            command = [*cli, "serve", "--redis", self.redis_url, "--port", str(port)]
            command += ["--queue-size", str(self.args.queue_size)]
            command += ["--retention", str(self.args.retention)]
            process = self.spawn(command, f"api{number}")
            url = f"http://127.0.0.1:{port}"
            wait(lambda url=url: healthy(url), f"API {number}", process=process)
            self.urls.append(url)

    def clients(self) -> list[FaceStudioClient]:
        return [FaceStudioClient(url, timeout=120) for url in self.urls]

    def redis_memory(self) -> dict[str, int]:
        """used_memory, and the part of it that is the clients' buffers (the API processes'
        pooled connections: more after a load that opened more of them)."""
        info = self.redis.info("memory")
        return {key: int(info[key]) for key in ("used_memory", "mem_clients_normal")}

    def expired_memory(self) -> dict[str, int]:
        """Redis's memory once the results so far have expired (and a server has pruned its
        accounts of them, as `/healthz` does)."""
        time.sleep(self.args.retention + EXPIRY_MARGIN_S)
        self.clients()[0].health()
        return self.redis_memory()

    def job_keys(self) -> int:
        return sum(1 for _ in self.redis.scan_iter(match="facestudio:job:*", count=1000))


def data(memory: dict[str, int]) -> int:
    """Redis's memory less its clients' buffers: what the jobs and their results hold."""
    return memory["used_memory"] - memory["mem_clients_normal"]


def warm_up(clients: list[FaceStudioClient], photo: Path, args) -> None:
    """A few jobs before a phase: a new worker's first job loads its face analyzer."""
    jobs = []
    for n in range(WARM_UP_JOBS):
        client = clients[n % len(clients)]
        jobs.append(
            (client, client.submit([[photo]], seed=n, num_inference_steps=args.steps)["id"])
        )
    for client, job_id in jobs:
        client.wait(job_id, timeout=600, poll_s=0.25)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
            return json.load(answer)["status"] == "ok"
    except (urllib.error.URLError, ConnectionError):
        return False


def wait(condition, what: str, process=None, timeout: float = 300.0, exceptions=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if condition():
                return
        except exceptions:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def print_table(report: dict) -> None:
    one, two = report["one_worker"], report["two_workers"]
    rows = [
        ("jobs accepted / succeeded / failed", "jobs_accepted", "jobs_succeeded", "jobs_failed"),
        ("answers 429 / 5xx", "answers_429", "answers_5xx"),
        ("throughput (jobs/s)", "jobs_per_s"),
        ("wall time (s)", "wall_s"),
        ("latency p50 / p95 (s)", "latency_s_p50", "latency_s_p95"),
    ]
    print(f"{'':38} {'1 worker':>18} {'2 workers':>18}")
    for label, *keys in rows:
        left = " / ".join(str(one[k]) for k in keys)
        right = " / ".join(str(two[k]) for k in keys)
        print(f"{label:38} {left:>18} {right:>18}")
    print(f"{'speedup, 2 workers vs 1':38} {report['speedup_two_vs_one']!s:>37}")
    stages = ("idle", "before", "loaded", "after_retention")
    memory = [report[f"redis_memory_{stage}"] for stage in stages]
    used = " / ".join(f"{m['used_memory'] / 2**20:.2f}" for m in memory)
    held = " / ".join(f"{data(m) / 2**20:.2f}" for m in memory)
    print("Redis used_memory MiB: idle, after phase 1 expired, loaded, after phase 2 expired")
    print(f"{'  used_memory':38} {used}")
    print(f"{'  less client buffers':38} {held}")
    print(f"{'job keys left after retention':38} {report['job_keys_after_retention']}")
    for name, passed in report["checks"].items():
        print(f"check {name}: {'ok' if passed else 'FAILED'}")


if __name__ == "__main__":
    sys.exit(main())
