"""The job queue alone: serial order, the bound, retention, memory bound, cancellation, and
errors that never leak internals."""

from __future__ import annotations

import threading
import time

import pytest

from facestudio.app.jobs import JobOutcome, JobQueue, JobResult, JobStatus, QueueFullError
from facestudio.errors import FaceStudioError


def make_queue(runner, **settings) -> JobQueue:
    options = {"max_queued": 2, "retention_s": 60.0, "max_kept_bytes": 10_000, **settings}
    return JobQueue(runner, **options)


def echo(work, progress):
    progress(1, 1)
    return JobOutcome([JobResult(bytes(work["size"]), {"seed": work["seed"]})])


def test_jobs_run_one_at_a_time_in_order():
    running, order, overlap = [], [], []

    def runner(work, progress):
        running.append(work)
        overlap.append(len(running))
        time.sleep(0.02)
        order.append(work)
        running.remove(work)
        return JobOutcome([])

    queue = make_queue(runner, max_queued=10)
    jobs = [queue.submit(n) for n in range(5)]
    for job in jobs:
        assert queue.wait(job.id, timeout=10).status is JobStatus.SUCCEEDED
    assert order == list(range(5)) and max(overlap) == 1
    queue.close()


def test_a_full_queue_refuses_with_a_retry_time_and_recovers():
    gate = threading.Event()
    queue = make_queue(lambda work, progress: gate.wait(10) and JobOutcome([]), max_queued=2)
    first = queue.submit(0)
    while queue.get(first.id).status is not JobStatus.RUNNING:
        time.sleep(0.01)
    waiting = [queue.submit(n) for n in (1, 2)]
    with pytest.raises(QueueFullError) as refused:
        queue.submit(3)
    assert refused.value.retry_after >= 1 and "busy" in str(refused.value)
    assert [queue.position(job.id) for job in waiting] == [0, 1]
    gate.set()
    for job in [first, *waiting]:
        assert queue.wait(job.id, timeout=10).status is JobStatus.SUCCEEDED
    queue.submit(4)  # room again
    queue.close()


def test_results_expire_after_the_retention_time_and_inputs_are_dropped_at_once():
    queue = make_queue(echo, retention_s=0.3)
    job = queue.submit({"size": 10, "seed": 1})
    done = queue.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED and done.work is None
    assert queue.get(job.id) is not None
    time.sleep(0.4)
    assert queue.get(job.id) is None
    queue.close()


def test_kept_results_stay_under_the_memory_bound_oldest_first():
    queue = make_queue(echo, max_kept_bytes=2_500, max_queued=10)
    ids = []
    for seed in range(4):
        job = queue.submit({"size": 1_000, "seed": seed})
        queue.wait(job.id, timeout=10)
        ids.append(job.id)
    kept = [queue.get(i) is not None for i in ids]
    assert kept == [False, False, True, True]
    queue.close()


def test_a_waiting_job_can_be_cancelled_and_a_finished_one_deleted():
    gate = threading.Event()
    queue = make_queue(lambda work, progress: gate.wait(10) and JobOutcome([]))
    running, waiting = queue.submit(0), queue.submit(1)
    assert queue.delete(waiting.id) and queue.get(waiting.id) is None
    assert waiting.status is JobStatus.FAILED and waiting.error == "the job was cancelled"
    assert not queue.delete("no-such-job")
    gate.set()
    queue.wait(running.id, timeout=10)
    assert queue.delete(running.id) and queue.get(running.id) is None
    queue.close()


def test_errors_become_one_line_and_internal_ones_say_nothing_of_the_internals():
    seen = []

    def runner(work, progress):
        if work == "user":
            raise FaceStudioError("no face found in 'me.jpg'; use a clearer photo")
        raise RuntimeError("CUDA out of memory at /secret/path/model.py:12")

    queue = make_queue(runner, on_unexpected_error=lambda job, exc: seen.append(exc))
    user, internal = queue.submit("user"), queue.submit("internal")
    assert queue.wait(user.id, timeout=10).error == "no face found in 'me.jpg'; use a clearer photo"
    failed = queue.wait(internal.id, timeout=10)
    assert failed.status is JobStatus.FAILED and "secret" not in failed.error
    assert "server log" in failed.error and isinstance(seen[0], RuntimeError)
    queue.close()


def stepping(steps: int, step_s: float):
    """A runner that reports `steps` steps, `step_s` apart, as the pipeline's callback does."""

    def runner(work, progress):
        for done in range(steps + 1):
            progress(done, steps)
            time.sleep(step_s)
        return JobOutcome([])

    return runner


def test_a_deleted_running_job_stops_at_its_next_step_and_the_worker_shows_busy_till_then():
    gate = threading.Event()

    def runner(work, progress):  # job 0 runs 100 s unless stopped; job 1 at once
        gate.wait(10)
        return stepping(10_000 if work == 0 else 1, 0.01)(work, progress)

    queue = make_queue(runner)
    job = queue.submit(0)
    while queue.get(job.id).status is not JobStatus.RUNNING:
        time.sleep(0.01)
    assert queue.delete(job.id) and queue.get(job.id) is None
    assert queue.stats()["running"] == 1  # deleted, but the worker has not stopped yet
    gate.set()
    started = time.monotonic()
    while queue.stats()["running"]:
        time.sleep(0.01)
    assert time.monotonic() - started < 5  # not the 100 s the job would have taken
    assert job.status is JobStatus.FAILED and job.error == "the job was cancelled"
    assert queue.wait(queue.submit(1).id, timeout=10).status is JobStatus.SUCCEEDED
    queue.close()


def test_a_job_that_runs_over_the_time_limit_is_stopped_with_one_line():
    queue = make_queue(stepping(10_000, 0.01), max_run_s=0.5)
    started = time.monotonic()
    job = queue.wait(queue.submit(0).id, timeout=30)
    assert job.status is JobStatus.FAILED and time.monotonic() - started < 5
    assert "limit of 0 s per job" in job.error or "limit of 1 s per job" in job.error
    assert "fewer steps" in job.error and queue.stats()["running"] == 0
    queue.close()


def test_the_photos_of_waiting_jobs_are_bounded_in_bytes():
    gate = threading.Event()
    queue = make_queue(
        lambda w, p: gate.wait(10) and JobOutcome([]), max_queued=10, max_waiting_bytes=1000
    )
    running = queue.submit(0, size=900)
    while queue.get(running.id).status is not JobStatus.RUNNING:
        time.sleep(0.01)
    queue.submit(1, size=600)  # the first waiting job always fits
    with pytest.raises(QueueFullError, match="MiB of photos"):
        queue.submit(2, size=600)
    queue.submit(3, size=400)
    gate.set()
    queue.close()
