"""Serving on Redis (`facestudio serve --redis` + `facestudio worker`), with a real
redis-server and the bundled model on the CPU: jobs spread over two workers, a worker killed
mid-job loses nothing and duplicates nothing, an API restart loses nothing, cancellation
reaches queued and running jobs, results expire from Redis, and the queue bound holds across
API processes."""

from __future__ import annotations

import io
import signal

import numpy as np
import pytest
from PIL import Image

from facestudio.app.redis_store import GROUP, Keys
from facestudio.app.studio import Studio
from tests.app.conftest import GatedStudio
from tests.app.redis_cluster import (
    api,
    finished,
    process_worker,
    record_speed,
    redis_server,
    submit,
    thread_workers,
    wait_for,
)

KEYS = Keys()
LONG_STEPS = "400"
"""Steps of a job that is still running when the test acts on it (it is cancelled or its
worker killed after its first steps)."""


@pytest.fixture(scope="module")
def second_studio() -> Studio:
    """The second worker's own copy of the model."""
    return Studio.load("bundled")


@pytest.fixture(scope="module", autouse=True)
def doomed(tmp_path_factory, studio):
    """A `facestudio worker` process on a Redis of its own, started with the module so that
    it loads its model while the other tests run: (its Redis URL, the process)."""
    folder = tmp_path_factory.mktemp("doomed")
    with redis_server(folder) as url:
        record_speed(url, studio)
        process = process_worker(url, "doomed", folder / "worker.log")
        try:
            yield url, process
        finally:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def redis_url(tmp_path, studio):
    with redis_server(tmp_path) as url:
        record_speed(url, studio)
        yield url


@pytest.fixture
def store(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def job_keys(store, job_id: str) -> list[bytes]:
    return sorted(store.scan_iter(match=f"{KEYS.job(job_id)}*"))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def running_on(store, job_id: str) -> str | None:
    """The worker running the job, once it has done a denoising step."""
    fields = store.hmget(KEYS.job(job_id), "status", "steps_done", "worker")
    if fields[0] == b"running" and int(fields[1] or 0) >= 1:
        return fields[2].decode()
    return None


def test_two_workers_share_the_jobs_and_each_result_is_served(
    redis_url, store, studio, second_studio, photo
):
    with thread_workers(redis_url, studio, second_studio), api(redis_url) as client:
        jobs = [submit(client, photo, seed=str(seed)).json() for seed in range(6)]
        done = [finished(client, job["id"]) for job in jobs]
        assert [job["status"] for job in done] == ["succeeded"] * 6
        assert [job["images"][0]["seed"] for job in done] == list(range(6))
        png = client.get(done[0]["images"][0]["url"])
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        workers = {store.hget(KEYS.job(job["id"]), "worker") for job in jobs}
        assert workers == {b"w1", b"w2"}
        assert not any(store.exists(KEYS.input(job["id"])) for job in jobs)  # photos gone
        health = client.get("/healthz").json()["queue"]
        assert health["workers"] == 2 and health["waiting"] == 0 and health["kept"] == 6
        listed = client.get("/v1/workers").json()["workers"]
        assert sorted(w["name"] for w in listed) == ["w1", "w2"]
        assert all(w["model"] == "bundled" and w["device"] == "cpu" for w in listed)


def test_an_api_restart_mid_queue_loses_no_job(redis_url, store, studio, photo):
    with api(redis_url) as first:
        jobs = [submit(first, photo, seed=str(seed)).json() for seed in range(4)]
        assert [job["position"] for job in jobs] == [0, 1, 2, 3]
    with api(redis_url) as second:  # a new process, no worker yet
        assert [second.get(job["url"]).json()["position"] for job in jobs] == [0, 1, 2, 3]
        assert second.get("/healthz").json()["queue"]["oldest_waiting_s"] >= 0
        with thread_workers(redis_url, studio):
            done = [finished(second, job["id"]) for job in jobs]
    assert [job["status"] for job in done] == ["succeeded"] * 4


def test_a_cancelled_queued_job_never_runs_and_leaves_nothing(redis_url, store, studio, photo):
    with api(redis_url) as client:
        cancelled = submit(client, photo).json()
        assert client.delete(cancelled["url"]).status_code == 204
        assert client.get(cancelled["url"]).status_code == 404
        assert job_keys(store, cancelled["id"]) == [] and store.xlen(KEYS.stream) == 0
        assert client.get("/healthz").json()["queue"]["waiting"] == 0
        with thread_workers(redis_url, studio) as (worker,):
            later = submit(client, photo).json()
            assert finished(client, later["id"])["status"] == "succeeded"
            wait_for(lambda: worker.worker.jobs_done >= 1)  # counted just after it finishes
            assert worker.worker.jobs_done == 1  # the cancelled job was never taken


def test_a_cancelled_running_job_stops_at_its_next_step(redis_url, store, studio, photo):
    with api(redis_url) as client, thread_workers(redis_url, studio) as (worker,):
        job = submit(client, photo, num_inference_steps=LONG_STEPS).json()
        wait_for(lambda: running_on(store, job["id"]))
        assert client.delete(job["url"]).status_code == 204
        # Stopped, not finished (the worker counts a job just after it leaves the running set).
        wait_for(
            lambda: store.zcard(KEYS.running) == 0 and worker.worker.jobs_done == 1, timeout=10
        )
        assert job_keys(store, job["id"]) == []
        assert client.get(job["url"]).status_code == 404
        after = submit(client, photo).json()  # the worker is free again
        assert finished(client, after["id"], timeout=30)["status"] == "succeeded"


def test_a_job_whose_worker_stopped_too_often_fails_in_one_line(redis_url, store, studio, photo):
    from facestudio.app.redis_store import connect
    from tests.app.redis_cluster import ThreadWorker

    with api(redis_url) as client:
        job = submit(client, photo).json()
        ghost = connect(redis_url)  # a worker that takes the job, starts it and dies
        ghost.client.xreadgroup(GROUP, "ghost", {KEYS.stream: ">"}, count=1)
        assert ghost.start(job["id"], "ghost", 1)[0] == b"run"
        worker = ThreadWorker(redis_url, studio, "w1", max_attempts=1)
        try:
            done = finished(client, job["id"])
        finally:
            worker.stop()
        assert done["status"] == "failed" and "stopped its worker 1 times" in done["error"]
        assert not store.exists(KEYS.input(job["id"])) and store.xlen(KEYS.stream) == 0
        ghost.client.close()


def test_results_expire_from_redis_after_the_retention_time(redis_url, store, studio, photo):
    with api(redis_url, retention_s=1.0) as client, thread_workers(redis_url, studio):
        job = submit(client, photo).json()
        done = finished(client, job["id"])
        assert done["expires"] - done["finished"] == pytest.approx(1.0)
        assert sorted(job_keys(store, job["id"])) == [
            KEYS.job(job["id"]).encode(),
            KEYS.images(job["id"]).encode(),
        ]
        wait_for(lambda: job_keys(store, job["id"]) == [], timeout=5)
        assert client.get(job["url"]).status_code == 404
        assert client.get("/healthz").json()["queue"]["kept"] == 0


def test_the_queue_bound_holds_across_api_processes_and_workers(
    redis_url, studio, second_studio, photo
):
    gated = [GatedStudio(studio), GatedStudio(second_studio)]
    try:
        with (
            thread_workers(redis_url, *gated),
            api(redis_url, queue_size=2) as one,
            api(redis_url, queue_size=2) as two,
        ):
            running = [submit(one, photo).json(), submit(two, photo).json()]
            wait_for(lambda: one.get("/healthz").json()["queue"]["running"] == 2)
            waiting = [submit(two, photo).json(), submit(one, photo).json()]
            assert [one.get(job["url"]).json()["position"] for job in waiting] == [0, 1]
            for client in (one, two):
                busy = submit(client, photo)
                assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
                assert "2 jobs waiting" in busy.json()["detail"]
            for studio_ in gated:
                studio_.gate.set()
            done = [finished(one, job["id"]) for job in running + waiting]
            assert [job["status"] for job in done] == ["succeeded"] * 4
    finally:
        for studio_ in gated:
            studio_.gate.set()


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(doomed, studio, photo):
    import redis

    url, process = doomed
    store = redis.Redis.from_url(url)
    with api(url) as client:
        job = submit(client, photo, num_inference_steps="24", seed="11").json()
        wait_for(lambda: running_on(store, job["id"]) == "doomed", timeout=120, every=0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        with thread_workers(url, studio):
            done = finished(client, job["id"])
            assert done["status"] == "succeeded", done
            record = store.hgetall(KEYS.job(job["id"]))
            assert record[b"attempts"] == b"2" and record[b"worker"] == b"w1"
            # nothing left to deliver or acknowledge, nothing running
            assert store.xlen(KEYS.stream) == 0 and store.zcard(KEYS.running) == 0
            assert store.xpending(KEYS.stream, GROUP)["pending"] == 0
            again = submit(client, photo, num_inference_steps="24", seed="11").json()
            reference = finished(client, again["id"])
        taken_over = client.get(done["images"][0]["url"]).content
        same = client.get(reference["images"][0]["url"]).content
        assert np.array_equal(pixels(taken_over), pixels(same))  # the seed fixes the image
    store.close()


def test_the_page_follows_its_job_through_redis(redis_url, studio, photo):
    import re
    import urllib.request

    from tests.app.conftest import file_data, page_call, running_server, upload_to_page

    described = Studio.described("bundled")
    with (
        thread_workers(redis_url, studio),
        running_server(described, ui=True, redis_url=redis_url) as (url, _app),
    ):
        status, paths = upload_to_page(url, "me.jpg", photo)
        assert status == 200
        event, (message, results) = page_call(
            url, "on_generate", person_0=[file_data(paths[0])], seed="3", num_inference_steps=2
        )
        assert event == "complete" and message.startswith("Done: 1 image"), message
        image_url = re.search(r'src="(/v1/jobs/[^"]+)"', results).group(1)
        with urllib.request.urlopen(url + image_url) as served:
            assert served.read().startswith(b"\x89PNG")
