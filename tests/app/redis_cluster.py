"""Fixtures of the Redis tests: a real redis-server per test (a free port, no persistence, in
the test's folder), workers in threads or as real `facestudio worker` processes, and API apps
(in-process) around the model's description alone, as `facestudio serve --redis` runs.

Without redis-server or the `redis` package the tests are skipped, except under CI (the
environment variable `CI` set), where a missing Redis is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facestudio.app.config import WorkerConfig
from facestudio.app.server import create_app
from facestudio.app.studio import Studio
from tests.app.conftest import config, fast_fields, free_port

VISIBILITY_S = 2.0
HEARTBEAT_S = 0.25


def redis_server_path() -> str:
    """redis-server's path; skips (fails under CI) when it or the client package is missing."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    try:
        import redis  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        message = "needs redis-server (apt-get install redis-server) and the redis package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private redis-server until the block ends: its URL."""
    import redis

    port = free_port()
    command = [redis_server_path(), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and process.poll() is None, "redis did not start"
            time.sleep(0.02)
    try:
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


class ThreadWorker:
    """A `Worker` on its own thread, around its own loaded model."""

    def __init__(self, url: str, studio: Studio, name: str, max_attempts: int = 3) -> None:
        from facestudio.app.redis_store import connect
        from facestudio.app.worker import Worker

        settings = WorkerConfig(
            url,
            name=name,
            visibility_s=VISIBILITY_S,
            heartbeat_s=HEARTBEAT_S,
            max_attempts=max_attempts,
        )
        self.worker = Worker(settings, studio, connect(url))
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the worker did not stop"


@contextlib.contextmanager
def thread_workers(url: str, *studios: Studio) -> Iterator[list[ThreadWorker]]:
    workers = [ThreadWorker(url, studio, f"w{n}") for n, studio in enumerate(studios, 1)]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def process_worker(url: str, name: str, log: Path) -> subprocess.Popen:
    """`facestudio worker` as a user runs it (the bundled model on the CPU)."""
    code = "import sys; from facestudio.interfaces.cli import main; sys.exit(main(sys.argv[1:]))"
    arguments = ["worker", "--redis", url, "--name", name, "--visibility", str(VISIBILITY_S)]
    arguments += ["--heartbeat", str(HEARTBEAT_S)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-c", code, *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )


def record_speed(url: str, studio: Studio) -> None:
    """What a worker records when it starts: the model and its speed (so that an API can start
    while no worker runs)."""
    from facestudio.app.redis_store import connect

    store = connect(url)
    store.register_model(studio.info.name, studio.seconds_per_pixel_step)
    store.client.close()


@contextlib.contextmanager
def api(url: str, **settings) -> Iterator[TestClient]:
    """An API process's app, in-process: the model's description only, jobs in Redis."""
    app = create_app(config(redis_url=url, **settings), Studio.described("bundled"), ui=False)
    with TestClient(app) as client:
        yield client


def submit(client: TestClient, photo: bytes, **fields):
    files = [("person_0", ("astronaut.jpg", photo, "image/jpeg"))]
    return client.post("/v1/generations", files=files, data=fast_fields(**fields))


def wait_for(condition, timeout: float = 60.0, every: float = 0.02):
    """Poll `condition()` until it is truthy: its value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return value


def finished(client: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    def done():
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job.get("status") in ("succeeded", "failed") else None

    return wait_for(done, timeout, every=0.05)
