"""The job store in Redis: its keys and the atomic steps of a job's life, shared by the front
ends (`redis_queue`) and the workers (`worker`).

Keys, under one prefix (one cluster per Redis database; choose the database in the URL):

| key | type | holds |
|---|---|---|
| `P:stream` | stream, group `workers` | one entry per submitted job: delivery to workers |
| `P:waiting` | sorted set | queued jobs by submission order: length, position, oldest |
| `P:waiting:bytes` | hash | the input bytes of each queued job (the `max_waiting_bytes` bound) |
| `P:running` | sorted set | running jobs by start time |
| `P:kept`, `P:kept:bytes` | sorted set, hash | finished jobs by end time, and their images' bytes |
| `P:job:ID` | hash | status, progress, times, attempts, error, warnings, image metadata |
| `P:job:ID:input` | string | the request (`job_codec`): deleted when the job ends |
| `P:job:ID:images` | hash | the PNGs by index: expire with the job after the retention time |
| `P:seq` | counter | the submission order |
| `P:durations` | list | the last job durations (for `Retry-After`) |
| `P:model` | hash | the model's name and the slowest measured speed (the job budget) |
| `P:worker:NAME` | string, TTL | a live worker's heartbeat (JSON) |

Every change of a job's state is one Lua script, so that any number of front ends and
workers can act at once: admission checks the bounds and queues in one step (no two front
ends both take the last place), a job is finished once (the first result wins; a second
worker that ran the same job after a takeover finds it finished and drops its copy), and
deletion removes everything at once (a running job's worker sees the job gone at its next
step and stops). Finished jobs expire after their retention time; nothing of a pending job
expires, so no queued job is ever lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from facestudio.errors import FaceStudioError

DEFAULT_PREFIX = "facestudio"
GROUP = "workers"
DURATIONS_KEPT = 20
SOCKET_TIMEOUT_S = 30.0
"""The longest wait for an answer of Redis; a worker's blocking read asks for less
(`MAX_BLOCK_S`)."""
MAX_BLOCK_S = 2.0

_TIME = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6\n"

SUBMIT = (
    _TIME
    + """
-- KEYS: waiting, waiting_bytes, job, input, stream, seq
-- ARGV: id, max_queued, max_waiting_bytes, size, input, retention_s, max_run_s, max_kept_bytes
local waiting = redis.call('ZCARD', KEYS[1])
if waiting >= tonumber(ARGV[2]) then return {0, waiting, 0} end
local held = 0
for _, size in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(size) end
if waiting > 0 and held + tonumber(ARGV[4]) > tonumber(ARGV[3]) then return {0, waiting, held} end
local seq = redis.call('INCR', KEYS[6])
local entry = redis.call('XADD', KEYS[5], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[3], 'status', 'queued', 'created', tostring(now), 'size', ARGV[4],
  'attempts', 0, 'entry', entry, 'retention_s', ARGV[6], 'max_run_s', ARGV[7],
  'max_kept_bytes', ARGV[8], 'steps_done', 0, 'steps_total', 0)
redis.call('SET', KEYS[4], ARGV[5])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return {1, waiting, tostring(now)}
"""
)

START = (
    _TIME
    + """
-- KEYS: job, waiting, waiting_bytes, running, input
-- ARGV: id, worker, max_attempts
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then return {'gone'} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > tonumber(ARGV[3]) then return {'exhausted', attempts - 1} end
redis.call('HSET', KEYS[1], 'status', 'running', 'started', tostring(now), 'worker', ARGV[2],
  'steps_done', 0)
redis.call('ZADD', KEYS[4], now, ARGV[1])
local input = redis.call('GET', KEYS[5])
if not input then return {'noinput'} end
return {'run', input, redis.call('HGET', KEYS[1], 'max_run_s')}
"""
)

PROGRESS = """
-- KEYS: job   ARGV: worker, steps done, steps in all
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 'stop' end
if redis.call('HGET', KEYS[1], 'worker') ~= ARGV[1] then return 'moved' end
redis.call('HSET', KEYS[1], 'steps_done', ARGV[2], 'steps_total', ARGV[3])
return 'ok'
"""

FINISH = (
    _TIME
    + """
-- KEYS: job, input, images, running, kept, kept_bytes, durations, stream
-- ARGV: id, status, error, warnings, metadata, group, entry, prefix, durations kept, PNG...
redis.call('XACK', KEYS[8], ARGV[6], ARGV[7])
redis.call('XDEL', KEYS[8], ARGV[7])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 'dropped' end
local started = tonumber(redis.call('HGET', KEYS[1], 'started')) or now
local retention_ms = math.ceil(tonumber(redis.call('HGET', KEYS[1], 'retention_s')) * 1000)
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finished', tostring(now), 'error', ARGV[3],
  'warnings', ARGV[4], 'images', ARGV[5])
redis.call('PEXPIRE', KEYS[1], retention_ms)
local bytes = 0
for i = 10, #ARGV do
  redis.call('HSET', KEYS[3], tostring(i - 10), ARGV[i])
  bytes = bytes + string.len(ARGV[i])
end
if bytes > 0 then redis.call('PEXPIRE', KEYS[3], retention_ms) end
if ARGV[2] == 'succeeded' then
  redis.call('LPUSH', KEYS[7], tostring(now - started))
  redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[9]) - 1)
end
-- the kept results: forget the expired, then the oldest beyond max_kept_bytes (not this one)
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], bytes)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - retention_ms / 1000)) do
  redis.call('ZREM', KEYS[5], old)
  redis.call('HDEL', KEYS[6], old)
end
local kept = 0
for _, size in ipairs(redis.call('HVALS', KEYS[6])) do kept = kept + tonumber(size) end
local limit = tonumber(redis.call('HGET', KEYS[1], 'max_kept_bytes'))
while kept > limit and redis.call('ZCARD', KEYS[5]) > 1 do
  local oldest = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
  kept = kept - (tonumber(redis.call('HGET', KEYS[6], oldest)) or 0)
  redis.call('ZREM', KEYS[5], oldest)
  redis.call('HDEL', KEYS[6], oldest)
  redis.call('DEL', ARGV[8] .. ':job:' .. oldest, ARGV[8] .. ':job:' .. oldest .. ':images')
end
return 'done'
"""
)

DELETE = """
-- KEYS: job, input, images, waiting, waiting_bytes, kept, kept_bytes, stream
-- ARGV: id
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  local entry = redis.call('HGET', KEYS[1], 'entry')
  if entry then redis.call('XDEL', KEYS[8], entry) end
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
"""

RENEW = """
-- KEYS: stream   ARGV: group, consumer, entry
-- Resets the idle time of the entry this worker holds (only if it still holds it).
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if pending[1] and pending[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  return 1
end
return 0
"""

REGISTER_MODEL = """
-- KEYS: model   ARGV: name, seconds per pixel-step ('' from a front end)
local name = redis.call('HGET', KEYS[1], 'name')
if name and name ~= ARGV[1] then return name end
redis.call('HSET', KEYS[1], 'name', ARGV[1])
if ARGV[2] ~= '' then
  local known = tonumber(redis.call('HGET', KEYS[1], 'seconds_per_pixel_step'))
  if not known or tonumber(ARGV[2]) > known then
    redis.call('HSET', KEYS[1], 'seconds_per_pixel_step', ARGV[2])
  end
end
return ''
"""


@dataclass(frozen=True)
class Keys:
    """The key names of one cluster."""

    prefix: str = DEFAULT_PREFIX

    @property
    def stream(self) -> str:
        return f"{self.prefix}:stream"

    @property
    def waiting(self) -> str:
        return f"{self.prefix}:waiting"

    @property
    def waiting_bytes(self) -> str:
        return f"{self.prefix}:waiting:bytes"

    @property
    def running(self) -> str:
        return f"{self.prefix}:running"

    @property
    def kept(self) -> str:
        return f"{self.prefix}:kept"

    @property
    def kept_bytes(self) -> str:
        return f"{self.prefix}:kept:bytes"

    @property
    def seq(self) -> str:
        return f"{self.prefix}:seq"

    @property
    def durations(self) -> str:
        return f"{self.prefix}:durations"

    @property
    def model(self) -> str:
        return f"{self.prefix}:model"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def input(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:input"

    def images(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:images"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    @property
    def workers_pattern(self) -> str:
        return f"{self.prefix}:worker:*"


class Store:
    """A Redis connection with the scripts registered and the group created: each step of a
    job's life is one call here, which passes the keys in the order its script takes them."""

    def __init__(self, client, keys: Keys | None = None) -> None:
        from redis.exceptions import ResponseError

        self.client = client
        self.keys = keys or Keys()
        self._submit = client.register_script(SUBMIT)
        self._start = client.register_script(START)
        self._progress = client.register_script(PROGRESS)
        self._finish = client.register_script(FINISH)
        self._delete = client.register_script(DELETE)
        self._renew = client.register_script(RENEW)
        self._register_model = client.register_script(REGISTER_MODEL)
        try:  # from the start of the stream: jobs queued before any worker came are delivered
            client.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def submit(self, job_id: str, blob: bytes, size: int, bounds: Bounds) -> list:
        """Queue a job within `bounds`: [1, waiting before it, created] or [0, waiting, bytes
        the waiting jobs hold]."""
        k = self.keys
        return self._submit(
            keys=[k.waiting, k.waiting_bytes, k.job(job_id), k.input(job_id), k.stream, k.seq],
            args=[job_id, *bounds.admission(size), blob, *bounds.job_fields()],
        )

    def start(self, job_id: str, worker: str, max_attempts: int) -> list:
        """['run', input, max_run_s], ['gone'], ['exhausted', attempts] or ['noinput']."""
        k = self.keys
        return self._start(
            keys=[k.job(job_id), k.waiting, k.waiting_bytes, k.running, k.input(job_id)],
            args=[job_id, worker, max_attempts],
        )

    def progress(self, job_id: str, worker: str, done: int, total: int) -> bytes:
        """b'ok', b'stop' (deleted or finished) or b'moved' (another worker has it)."""
        return self._progress(keys=[self.keys.job(job_id)], args=[worker, done, total])

    def finish(
        self,
        job_id: str,
        entry: str,
        status: str,
        error: str,
        warnings: list[str],
        metadata: list[dict],
        images: list[bytes],
    ) -> bytes:
        """b'done', or b'dropped' when the job was deleted or finished meanwhile."""
        k = self.keys
        return self._finish(
            keys=[
                k.job(job_id),
                k.input(job_id),
                k.images(job_id),
                k.running,
                k.kept,
                k.kept_bytes,
                k.durations,
                k.stream,
            ],
            args=[
                job_id,
                status,
                error,
                json.dumps(warnings),
                json.dumps(metadata, default=str),
                GROUP,
                entry,
                k.prefix,
                DURATIONS_KEPT,
                *images,
            ],
        )

    def delete(self, job_id: str) -> bool:
        k = self.keys
        return bool(
            self._delete(
                keys=[
                    k.job(job_id),
                    k.input(job_id),
                    k.images(job_id),
                    k.waiting,
                    k.waiting_bytes,
                    k.kept,
                    k.kept_bytes,
                    k.stream,
                ],
                args=[job_id],
            )
        )

    def renew(self, worker: str, entry: str) -> bool:
        return bool(self._renew(keys=[self.keys.stream], args=[GROUP, worker, entry]))

    def register_model(self, name: str, seconds_per_pixel_step: float | None = None) -> None:
        """Record the cluster's model (and a speed a worker measured); refuses, in one line, a
        model other than the one this database already serves."""
        speed = "" if seconds_per_pixel_step is None else repr(seconds_per_pixel_step)
        other = self._register_model(keys=[self.keys.model], args=[name, speed])
        if other:
            raise FaceStudioError(
                f"this Redis database serves model '{other.decode()}', not '{name}'; give "
                f"--model {other.decode()} or use another database (redis://host:6379/1)"
            )

    def seconds_per_pixel_step(self) -> float | None:
        """The slowest speed a worker measured, None before any did."""
        value = self.client.hget(self.keys.model, "seconds_per_pixel_step")
        return float(value) if value is not None else None


@dataclass(frozen=True)
class Bounds:
    """The limits a front end queues a job under (stored with the job for its worker)."""

    max_queued: int
    max_waiting_bytes: int
    retention_s: float
    max_run_s: float
    max_kept_bytes: int

    def admission(self, size: int) -> list:
        return [self.max_queued, self.max_waiting_bytes, size]

    def job_fields(self) -> list:
        return [repr(self.retention_s), repr(self.max_run_s), self.max_kept_bytes]


def connect(url: str, prefix: str = DEFAULT_PREFIX) -> Store:
    """The store at `url`, checked to answer (one line when it does not)."""
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=10, socket_timeout=SOCKET_TIMEOUT_S, health_check_interval=30
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        where = redis.connection.parse_url(url).get("host", "the socket")
        raise FaceStudioError(
            f"cannot reach Redis at {where} ({type(exc).__name__}): start redis-server or fix --redis"
        ) from None
    return Store(client, Keys(prefix))
