"""The front ends' side of the job queue in Redis: `RedisJobQueue`, a `JobStore` like
`JobQueue`, whose jobs run on `facestudio worker` processes anywhere.

It holds nothing itself: jobs, their inputs and their results are in Redis (`redis_store`),
so any number of servers can answer for the same jobs, and a restarted server loses nothing.
The bounds are those of `JobQueue` and hold across servers (admission is one atomic step):
`max_queued` waiting jobs, `max_waiting_bytes` of their photos, `max_kept_bytes` of results.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from typing import Any

from facestudio.app.job_codec import encode_request
from facestudio.app.jobs import (
    CANCELLED,
    DELETED_WHILE_RUNNING,
    Job,
    JobResult,
    JobStatus,
    QueueFullError,
    check_queue_bounds,
)
from facestudio.app.redis_store import Bounds, Store
from facestudio.errors import FaceStudioError

logger = logging.getLogger(__name__)

REFRESH_S = 0.1
"""How stale a `LiveJob` may be: the page reads its job's state every 0.25 s."""

SPEED_WAIT_LOG_S = 30.0


class RedisJobQueue:
    """Jobs queued in Redis for the workers; the job views read from Redis on every call."""

    def __init__(
        self,
        store: Store,
        max_queued: int,
        retention_s: float,
        max_kept_bytes: int,
        max_run_s: float,
        max_waiting_bytes: int,
    ) -> None:
        check_queue_bounds(max_queued, retention_s)
        self.store = store
        self.bounds = Bounds(max_queued, max_waiting_bytes, retention_s, max_run_s, max_kept_bytes)

    @property
    def retention_s(self) -> float:
        """How long a finished job's results are kept (the `JobStore` attribute)."""
        return self.bounds.retention_s

    # -- the JobStore calls ---------------------------------------------------------------

    def submit(self, work: Any, size: int = 0) -> Job:
        """Queue the request `work`; `QueueFullError` when the shared bounds are reached."""
        blob = encode_request(work)
        job_id = secrets.token_urlsafe(16)
        accepted, waiting, held_or_created = self.store.submit(job_id, blob, size, self.bounds)
        if accepted:
            job = Job(job_id, None, size=size, created=float(held_or_created))
            return LiveJob(self, job)
        if waiting >= self.bounds.max_queued:
            reason = f"{waiting} jobs waiting"
        else:
            reason = f"the waiting jobs hold {int(held_or_created) / 2**20:.0f} MiB of photos"
        retry = self.retry_after(waiting)
        raise QueueFullError(f"the server is busy ({reason}); try again in {retry} s", retry)

    def get(self, job_id: str) -> Job | None:
        """The job as Redis has it now; None when unknown, deleted or expired."""
        keys = self.store.keys
        fields = self.store.client.hgetall(keys.job(job_id))
        if not fields or b"status" not in fields:
            return None
        text = {k.decode(): v.decode() for k, v in fields.items()}
        job = Job(
            job_id,
            None,
            status=JobStatus(text["status"]),
            steps_done=int(text.get("steps_done", 0)),
            steps_total=int(text.get("steps_total", 0)),
            error=text.get("error") or None,
            created=float(text["created"]),
            started=_float(text.get("started")),
            finished=_float(text.get("finished")),
            size=int(text.get("size", 0)),
        )
        if job.status is JobStatus.SUCCEEDED:
            metadata = json.loads(text.get("images") or "[]")
            job.results = [
                StoredResult(self.store, job_id, index, meta) for index, meta in enumerate(metadata)
            ]
            job.warnings = json.loads(text.get("warnings") or "[]")
        return job

    def position(self, job_id: str) -> int | None:
        """How many jobs wait before this one, across every server; None when not waiting."""
        return self.store.client.zrank(self.store.keys.waiting, job_id)

    def delete(self, job_id: str) -> bool:
        """Forget the job and its results; a queued one never runs, a running one stops at
        its worker's next step. False if unknown."""
        return self.store.delete(job_id)

    def stats(self) -> dict:
        """The queue as `JobQueue.stats` gives it, plus the age of the oldest waiting job and
        the live workers, for monitoring."""
        keys, client = self.store.keys, self.store.client
        now = _redis_time(client)
        expired = client.zrangebyscore(keys.kept, "-inf", now - self.retention_s)
        if expired:  # their keys expired by themselves; forget them in the accounting too
            client.zrem(keys.kept, *expired)
            client.hdel(keys.kept_bytes, *expired)
        with client.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.waiting)
            pipe.zrange(keys.waiting, 0, 0)
            pipe.zcard(keys.running)
            pipe.zrange(keys.running, 0, 0, withscores=True)
            pipe.zcard(keys.kept)
            waiting, oldest, running, first_running, kept = pipe.execute()
        created = client.hget(keys.job(oldest[0].decode()), "created") if oldest else None
        return {
            "waiting": waiting,
            "running": running,
            "running_s": round(now - first_running[0][1], 1) if first_running else None,
            "max_waiting": self.bounds.max_queued,
            "max_run_s": self.bounds.max_run_s if math.isfinite(self.bounds.max_run_s) else None,
            "kept": kept,
            "retention_s": self.retention_s,
            "oldest_waiting_s": round(now - float(created), 1) if created else None,
            "workers": len(self.workers()),
        }

    def close(self) -> None:
        self.store.client.close()

    # -- the cluster ----------------------------------------------------------------------

    def workers(self) -> list[dict]:
        """The workers whose heartbeat is alive, as they announce themselves."""
        client = self.store.client
        names = sorted(client.scan_iter(match=self.store.keys.workers_pattern, count=100))
        beats = client.mget(names) if names else []
        return [json.loads(beat) for beat in beats if beat is not None]

    def retry_after(self, waiting: int) -> int:
        """Seconds until a place is likely free: the recent job time × the jobs ahead, shared
        by the live workers."""
        recent = [float(d) for d in self.store.client.lrange(self.store.keys.durations, 0, -1)]
        typical = sum(recent) / len(recent) if recent else 1.0
        workers = max(1, len(self.workers()))
        return max(1, math.ceil(typical * (waiting + 1) / workers))


def wait_for_speed(store: Store, model: str) -> float:
    """The speed of the slowest worker of `model` (seconds per pixel-step), waiting for the
    first worker to measure it when none has yet; refuses a cluster of another model."""
    store.register_model(model)
    logged = -math.inf
    while (speed := store.seconds_per_pixel_step()) is None:
        if time.monotonic() - logged > SPEED_WAIT_LOG_S:
            print("FaceStudio: waiting for a worker to measure the model's speed", flush=True)
            logged = time.monotonic()
        time.sleep(0.2)
    return speed


class LiveJob:
    """A job handle that follows the job in Redis: every read of its state sees it as it is
    now (re-read at most every `REFRESH_S`). A job deleted meanwhile reads as failed."""

    def __init__(self, queue: RedisJobQueue, job: Job) -> None:
        self._queue = queue
        self._job = job
        self._read = time.monotonic()

    def __getattr__(self, name: str) -> Any:
        if time.monotonic() - self._read > REFRESH_S:
            self._refresh()
        return getattr(self._job, name)

    def _refresh(self) -> None:
        self._read = time.monotonic()
        current = self._queue.get(self._job.id)
        if current is not None:
            self._job = current
        elif not self._job.status.finished:
            queued = self._job.status is JobStatus.QUEUED
            self._job.error = CANCELLED if queued else DELETED_WHILE_RUNNING
            self._job.status = JobStatus.FAILED
            self._job.finished = time.time()


class StoredResult(JobResult):
    """A finished image whose PNG stays in Redis until it is read."""

    def __init__(self, store: Store, job_id: str, index: int, metadata: dict) -> None:
        self._store, self._job_id, self._index = store, job_id, index
        self.metadata = metadata

    @property
    def data(self) -> bytes:
        data = self._store.client.hget(self._store.keys.images(self._job_id), str(self._index))
        if data is None:
            raise FaceStudioError(f"the images of job {self._job_id} have just expired")
        return data


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def _redis_time(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6
