"""`facestudio worker`: one model on one device, running jobs from the queue in Redis.

Delivery is at least once. A worker reads one job at a time from the stream's consumer group
(XREADGROUP); the job stays pending under its name until the worker acknowledges it when the
job ends. While it runs, the worker's heartbeat (a thread) renews its claim every
`heartbeat_s`, so the job's idle time stays short; a worker that stops (killed, crashed, cut off
from Redis) stops renewing, and after `visibility_s` another worker takes the job over
(XAUTOCLAIM) and runs it again. A job whose worker stopped `max_attempts` times fails with a
one-line error instead of taking down worker after worker. The first result written wins
(`redis_store.FINISH`): a worker that finds its job taken over stops at its next step, and one
that finishes a job another already finished drops its copy (the seed fixes the images, so
both copies are the same images).

Cancellation needs no message: deleting a job removes its hash, and the progress callback,
called at every denoising step, finds it gone and stops the job (`JobStoppedError`), as
`JobQueue` does in one process. Photos are deleted from Redis when the job ends, whatever
the outcome.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from facestudio.app.config import WorkerConfig
from facestudio.app.job_codec import decode_request
from facestudio.app.jobs import (
    CANCELLED,
    UNEXPECTED_FAILURE,
    JobOutcome,
    JobStatus,
    JobStoppedError,
    ProgressCallback,
    overran,
)
from facestudio.app.redis_store import GROUP, MAX_BLOCK_S, Store
from facestudio.app.studio import Studio
from facestudio.errors import FaceStudioError

logger = logging.getLogger(__name__)

RETRY_S = 2.0
"""Pause after Redis could not be reached, before trying again."""


class JobTakenOverError(JobStoppedError):
    """Another worker took this job over (this one had not renewed its claim in time)."""


class Worker:
    """Takes jobs from `store` one at a time and runs them on `studio` until `stop()`."""

    def __init__(self, config: WorkerConfig, studio: Studio, store: Store) -> None:
        self.config = config
        self.studio = studio
        self.store = store
        self.name = config.name or f"{socket.gethostname()}-{os.getpid()}"
        self.jobs_done = 0
        self._started = time.time()
        self._stopping = threading.Event()
        self._current: tuple[str, str, float] | None = None  # entry, job id, start
        self._cursor: bytes | str = "0-0"

    def stop(self) -> None:
        """Take no new job; the running one finishes first."""
        self._stopping.set()

    def run(self) -> None:
        """Record the model's speed, announce this worker, then take jobs until stopped."""
        self.store.register_model(self.studio.info.name, self.studio.seconds_per_pixel_step)
        self._forget_departed()
        self._announce()
        heartbeat = threading.Thread(target=self._beat, name="facestudio-heartbeat", daemon=True)
        heartbeat.start()
        try:
            while not self._stopping.is_set():
                try:
                    taken = self._next()
                    if taken is not None:
                        self._take(*taken)
                except _redis_errors() as exc:
                    logger.warning("worker %s: Redis failed (%s); retrying", self.name, exc)
                    self._stopping.wait(RETRY_S)
        finally:
            self._stopping.set()
            heartbeat.join(timeout=self.config.heartbeat_s + 5)
            self._leave()

    # -- taking jobs ----------------------------------------------------------------------

    def _next(self) -> tuple[str, str] | None:
        """A job another worker left behind (idle past the visibility timeout), else a new
        one (waiting up to one heartbeat for it): (stream entry, job id)."""
        client, stream = self.store.client, self.store.keys.stream
        visibility_ms = int(self.config.visibility_s * 1000)
        self._cursor, messages, *_deleted = client.xautoclaim(
            stream, GROUP, self.name, visibility_ms, start_id=self._cursor, count=1
        )  # the cursor walks the whole pending list over successive calls
        if not messages:
            block_ms = max(1, int(min(self.config.heartbeat_s, MAX_BLOCK_S) * 1000))
            read = client.xreadgroup(GROUP, self.name, {stream: ">"}, count=1, block=block_ms)
            messages = read[0][1] if read else []
        if not messages:
            return None
        entry, fields = messages[0]
        return entry.decode(), fields[b"job"].decode()

    def _take(self, entry: str, job_id: str) -> None:
        """Start the job (or fail it, or drop an entry whose job is gone) and run it."""
        answer = self.store.start(job_id, self.name, self.config.max_attempts)
        kind = answer[0].decode()
        if kind == "gone":  # deleted, expired or finished meanwhile: acknowledge the entry
            self._finish(entry, job_id, JobStatus.FAILED, CANCELLED)
        elif kind == "exhausted":
            self._finish(entry, job_id, JobStatus.FAILED, _exhausted(int(answer[1])))
        elif kind == "noinput":
            self._finish(
                entry, job_id, JobStatus.FAILED, "the job's inputs were lost; submit again"
            )
        else:
            self._run(entry, job_id, answer[1], float(answer[2]))

    def _run(self, entry: str, job_id: str, blob: bytes, max_run_s: float) -> None:
        self._current = (entry, job_id, time.time())
        outcome, error = None, None
        try:
            outcome = self.studio.run(decode_request(blob), self._progress(job_id, max_run_s))
        except JobTakenOverError:
            logger.warning("worker %s: job %s was taken over by another worker", self.name, job_id)
            return  # the other worker finishes it
        except FaceStudioError as exc:
            error = str(exc)
        except _redis_errors():
            raise  # not the job's fault: it stays pending, and runs again once Redis answers
        except Exception:
            logger.exception("worker %s: job %s failed", self.name, job_id)
            error = UNEXPECTED_FAILURE
        finally:
            self._current = None
        if outcome is not None:
            self._finish(entry, job_id, JobStatus.SUCCEEDED, "", outcome)
        else:
            self._finish(entry, job_id, JobStatus.FAILED, error or CANCELLED)
        self.jobs_done += 1

    def _progress(self, job_id: str, max_run_s: float) -> ProgressCallback:
        """Records the steps in Redis; stops the job once it was deleted, taken over, or has
        run `max_run_s`."""
        deadline = time.monotonic() + max_run_s

        def progress(done: int, total: int) -> None:
            answer = self.store.progress(job_id, self.name, done, total)
            if answer == b"stop":
                raise JobStoppedError(CANCELLED)
            if answer == b"moved":
                raise JobTakenOverError(f"job {job_id} was taken over by another worker")
            if time.monotonic() > deadline:
                raise overran(max_run_s)

        return progress

    def _finish(
        self,
        entry: str,
        job_id: str,
        status: JobStatus,
        error: str,
        outcome: JobOutcome | None = None,
    ) -> None:
        """Record the outcome once (a job finished or deleted meanwhile keeps its state),
        acknowledge the entry and delete the inputs."""
        results = outcome.results if outcome is not None else []
        self.store.finish(
            job_id,
            entry,
            str(status),
            error,
            outcome.warnings if outcome is not None else [],
            [r.metadata for r in results],
            [r.data for r in results],
        )

    # -- heartbeat ------------------------------------------------------------------------

    def _beat(self) -> None:
        """Every heartbeat: announce this worker and renew the claim on its job."""
        while not self._stopping.wait(self.config.heartbeat_s):
            try:
                self._announce()
                current = self._current
                if current is not None:
                    self.store.renew(self.name, current[0])
            except _redis_errors() as exc:
                logger.warning("worker %s: heartbeat failed (%s)", self.name, exc)

    def _announce(self) -> None:
        current = self._current
        state = {
            "name": self.name,
            "model": self.studio.info.name,
            "device": self.config.device,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": round(self._started, 3),
            "seen": round(time.time(), 3),
            "busy": current is not None,
            "running_s": round(time.time() - current[2], 1) if current is not None else None,
            "jobs_done": self.jobs_done,
        }
        ttl_ms = int(3 * self.config.heartbeat_s * 1000)
        self.store.client.set(self.store.keys.worker(self.name), json.dumps(state), px=ttl_ms)

    def _forget_departed(self) -> None:
        """Remove consumers of workers that were killed long ago: no heartbeat, nothing
        pending (their jobs were taken over), silent for ten visibility timeouts."""
        client, keys = self.store.client, self.store.keys
        silent_ms = 10 * self.config.visibility_s * 1000
        for consumer in client.xinfo_consumers(keys.stream, GROUP):
            name = consumer["name"].decode()
            silent = consumer["pending"] == 0 and consumer["idle"] > silent_ms
            if silent and not client.exists(keys.worker(name)):
                client.xgroup_delconsumer(keys.stream, GROUP, name)

    def _leave(self) -> None:
        """Withdraw the heartbeat and, holding no job, the consumer itself."""
        client, keys = self.store.client, self.store.keys
        try:
            client.delete(keys.worker(self.name))
            held = client.xpending_range(keys.stream, GROUP, "-", "+", 1, consumername=self.name)
            if not held:
                client.xgroup_delconsumer(keys.stream, GROUP, self.name)
        except _redis_errors() as exc:
            logger.warning("worker %s: could not leave cleanly (%s)", self.name, exc)


def _exhausted(attempts: int) -> str:
    return (
        f"the job stopped its worker {attempts} times (a crash, or workers that were stopped "
        "while running it) and was not tried again; try fewer images or pixels"
    )


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


def run_worker(config: WorkerConfig) -> None:
    """Connect, load and measure the model, then take jobs until SIGINT or SIGTERM (the
    running job finishes first; a second signal stops at once)."""
    import signal

    from facestudio.app.config import check_device
    from facestudio.app.redis_store import connect
    from facestudio.pipeline.model_info import read_model_info

    config.check()
    store = connect(config.redis_url)
    info = read_model_info(config.model)
    if info is not None:
        store.register_model(info.name)  # a model other than the cluster's: refused before it loads
    check_device(config.device)
    studio = Studio.load(config.model, config.device)
    worker = Worker(config, studio, store)

    def stop(signum, _frame) -> None:
        worker.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(
        f"FaceStudio worker {worker.name}: model '{studio.info.name}' on {config.device}, "
        "taking jobs from Redis",
        flush=True,
    )
    worker.run()
