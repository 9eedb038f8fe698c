"""The job queue of the server: bounded, one worker thread, results kept for a limited time.

One model sits in memory and a CPU runs one generation at a time well, so jobs run serially on
a single worker thread, in the order they came. The queue holds at most `max_queued` waiting
jobs: a full queue refuses new work at once (the HTTP API answers 429 with `Retry-After`)
instead of letting latency and memory grow without bound. Inputs live only inside their job
and are dropped when it finishes; results (PNG bytes) are kept in memory for `retention_s`
seconds after the job ends, or until deleted, then forgotten; when the kept results pass
`max_kept_bytes`, the oldest are forgotten first, so memory stays bounded under any load.
The inputs of waiting jobs are bounded too (`max_waiting_bytes`), and in time a running job
is bounded by `max_run_s`: the runner's progress callback, called at every denoising step,
stops a job that runs longer, or whose deletion was asked for, by raising in the worker.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from facestudio.errors import FaceStudioError

ProgressCallback = Callable[[int, int], None]
"""Called by a running job with (steps done, steps in all)."""

CANCELLED = "the job was cancelled"
UNEXPECTED_FAILURE = "the generation failed unexpectedly; the server log has the details"
DELETED_WHILE_RUNNING = "the job was deleted while it ran"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class QueueFullError(FaceStudioError):
    """The queue holds its maximum of waiting jobs; `retry_after` estimates when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobStoppedError(FaceStudioError):
    """Raised inside a running job (from its progress callback) to stop it: it was deleted,
    or it ran over the time a job may hold the worker."""


@dataclass
class JobResult:
    """One finished image: the exact bytes to serve and the settings that made it."""

    data: bytes
    metadata: dict


@dataclass
class Job:
    """A generation request and what became of it. `work` holds the inputs until it runs."""

    id: str
    work: Any
    status: JobStatus = JobStatus.QUEUED
    steps_done: int = 0
    steps_total: int = 0
    results: list[JobResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    size: int = 0  # bytes of its inputs while it waits
    stop_requested: bool = False

    def image_name(self, index: int) -> str:
        """The file name a download of image `index` gets."""
        seed = self.results[index].metadata.get("seed")
        return (
            f"facestudio-{self.id[:8]}-{index}"
            + (f"-seed{seed}" if seed is not None else "")
            + ".png"
        )

    @property
    def progress(self) -> float:
        if self.status is JobStatus.SUCCEEDED:
            return 1.0
        return self.steps_done / self.steps_total if self.steps_total else 0.0


@dataclass(frozen=True)
class JobOutcome:
    """What the runner returns for one job: its images and the warnings to show with them."""

    results: list[JobResult]
    warnings: list[str] = field(default_factory=list)


Runner = Callable[[Any, ProgressCallback], JobOutcome]


def overran(max_run_s: float) -> JobStoppedError:
    """The error that stops a job that has held its worker for `max_run_s`."""
    return JobStoppedError(
        f"the job ran over this server's limit of {max_run_s:.0f} s per job "
        "and was stopped; ask for fewer steps, images or pixels"
    )


def check_queue_bounds(max_queued: int, retention_s: float) -> None:
    """The bounds every job queue needs: room for a job, and results kept for some time."""
    if max_queued < 1:
        raise FaceStudioError(f"the queue must hold at least 1 job, got {max_queued}")
    if not retention_s > 0:
        raise FaceStudioError(f"results must be kept a positive time, got {retention_s} s")


class JobStore(Protocol):
    """What the API and the page ask of a job queue: `JobQueue` in one process, or
    `facestudio.app.redis_queue.RedisJobQueue` shared by many processes and machines."""

    retention_s: float

    def submit(self, work: Any, size: int = 0) -> Job: ...

    def get(self, job_id: str) -> Job | None: ...

    def position(self, job_id: str) -> int | None: ...

    def delete(self, job_id: str) -> bool: ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


class JobQueue:
    """Jobs submitted from any thread, run one at a time by one worker thread.

    `runner(work, progress)` does the work of one job; a `FaceStudioError` it raises becomes
    the job's one-line error, anything else a generic one (details go to the server log).
    """

    def __init__(
        self,
        runner: Runner,
        max_queued: int,
        retention_s: float,
        max_kept_bytes: int,
        on_unexpected_error: Callable[[Job, BaseException], None] | None = None,
        max_run_s: float = math.inf,
        max_waiting_bytes: float = math.inf,
    ) -> None:
        check_queue_bounds(max_queued, retention_s)
        self._runner = runner
        self.max_queued = max_queued
        self.retention_s = retention_s
        self.max_kept_bytes = max_kept_bytes
        self.max_run_s = max_run_s
        self.max_waiting_bytes = max_waiting_bytes
        self._on_unexpected_error = on_unexpected_error
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None  # the worker's job, deleted or not
        self._durations: deque[float] = deque(maxlen=20)
        self._condition = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="facestudio-jobs", daemon=True)
        self._worker.start()

    # -- from any thread -------------------------------------------------------------------

    def submit(self, work: Any, size: int = 0) -> Job:
        """Queue `work` (whose inputs take `size` bytes); raises `QueueFullError` when
        `max_queued` jobs already wait, or their inputs would pass `max_waiting_bytes`."""
        with self._condition:
            self._forget_expired()
            waiting_bytes = sum(job.size for job in self._waiting)
            if len(self._waiting) >= self.max_queued:
                reason = f"{len(self._waiting)} jobs waiting"
            elif self._waiting and waiting_bytes + size > self.max_waiting_bytes:
                reason = f"the waiting jobs hold {waiting_bytes / 2**20:.0f} MiB of photos"
            else:
                job = Job(secrets.token_urlsafe(16), work, size=size)
                self._jobs[job.id] = job
                self._waiting.append(job)
                self._condition.notify_all()
                return job
            retry = self._retry_after()
            raise QueueFullError(f"the server is busy ({reason}); try again in {retry} s", retry)

    def get(self, job_id: str) -> Job | None:
        """The job, or None when it never existed, has expired or was deleted."""
        with self._condition:
            self._forget_expired()
            return self._jobs.get(job_id)

    def position(self, job_id: str) -> int | None:
        """How many jobs wait before this one (0: next); None when it is not waiting."""
        with self._condition:
            for place, job in enumerate(self._waiting):
                if job.id == job_id:
                    return place
            return None

    def delete(self, job_id: str) -> bool:
        """Forget a job and its results now; a waiting job is cancelled, a running one stopped
        at its next step (`JobStoppedError` in the worker). False if unknown."""
        with self._condition:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return False
            if job in self._waiting:
                self._waiting.remove(job)
                job.status, job.error = JobStatus.FAILED, CANCELLED
                job.finished = time.time()
                self._condition.notify_all()  # anyone waiting on it learns it ended
                job.work = None
            job.stop_requested = True
            job.results = []
            return True

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job has finished (or `timeout` seconds pass); the job or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                job = self._jobs.get(job_id)
                if job is None or job.status.finished:
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return job
                self._condition.wait(left)

    def stats(self) -> dict:
        """The queue as a client sees it; `running` counts the worker's job even when it was
        deleted and is still stopping, so an idle worker is never reported while busy."""
        with self._condition:
            self._forget_expired()
            running = self._running
            return {
                "waiting": len(self._waiting),
                "running": int(running is not None),
                "running_s": round(time.time() - (running.started or time.time()), 1)
                if running is not None
                else None,
                "max_waiting": self.max_queued,
                "max_run_s": self.max_run_s if math.isfinite(self.max_run_s) else None,
                "kept": sum(j.status.finished for j in self._jobs.values()),
                "retention_s": self.retention_s,
            }

    def close(self, timeout: float = 60.0) -> None:
        """Stop after the running job; waiting jobs are dropped."""
        with self._condition:
            self._stopping = True
            self._waiting.clear()
            self._condition.notify_all()
        self._worker.join(timeout)

    # -- internals (the lock is held by the caller unless said otherwise) -------------------

    def _retry_after(self) -> int:
        typical = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, math.ceil(typical * (len(self._waiting) + 1)))

    def _forget_expired(self) -> None:
        limit = time.time() - self.retention_s
        expired = [
            key
            for key, job in self._jobs.items()
            if job.finished is not None and job.finished < limit
        ]
        for key in expired:
            del self._jobs[key]
        finished = sorted(
            (job for job in self._jobs.values() if job.finished is not None),
            key=lambda job: job.finished,
        )
        kept = sum(len(r.data) for job in finished for r in job.results)
        for job in finished[:-1]:  # the newest stays, even alone over the bound
            if kept <= self.max_kept_bytes:
                break
            kept -= sum(len(r.data) for r in job.results)
            del self._jobs[job.id]

    def _work(self) -> None:
        """The worker thread: take the oldest waiting job, run it, record the outcome."""
        while True:
            with self._condition:
                while not self._waiting and not self._stopping:
                    self._condition.wait(timeout=max(1.0, self.retention_s / 2))
                    self._forget_expired()
                if self._stopping:
                    return
                job = self._waiting.popleft()
                job.status, job.started = JobStatus.RUNNING, time.time()
                self._running = job
            try:
                self._run(job)
            finally:
                with self._condition:
                    self._running = None

    def _run(self, job: Job) -> None:
        outcome, error = None, None
        try:
            outcome = self._runner(job.work, self._progress(job))
        except FaceStudioError as exc:
            error = str(exc)
        except Exception as exc:
            error = UNEXPECTED_FAILURE
            if self._on_unexpected_error is not None:
                self._on_unexpected_error(job, exc)
        with self._condition:
            job.work = None  # the inputs (photos) are dropped as soon as the job ends
            job.finished = time.time()
            self._durations.append(job.finished - (job.started or job.finished))
            if outcome is not None and job.id in self._jobs:
                job.results, job.warnings = outcome.results, outcome.warnings
                job.status = JobStatus.SUCCEEDED
                self._forget_expired()
            else:
                job.error = error or DELETED_WHILE_RUNNING
                job.status = JobStatus.FAILED
            self._condition.notify_all()

    def _progress(self, job: Job) -> ProgressCallback:
        """The job's progress callback: records the steps, and stops the job (raises in the
        worker) once it was deleted or has run `max_run_s`."""
        deadline = time.monotonic() + self.max_run_s

        def progress(done: int, total: int) -> None:
            job.steps_done, job.steps_total = done, total
            if job.stop_requested:
                raise JobStoppedError(CANCELLED)
            if time.monotonic() > deadline:
                raise overran(self.max_run_s)

        return progress
