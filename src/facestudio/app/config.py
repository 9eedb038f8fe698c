"""The server's settings: where it listens, who may use it, how much work it holds."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import urllib.parse
from dataclasses import dataclass, fields

from facestudio.errors import FaceStudioError

TOKEN_ENV = "FACESTUDIO_TOKEN"
"""Environment variable that holds the bearer token (never a command-line argument, which
other users of the machine can read in the process list)."""

MIN_TOKEN_CHARS = 16
"""A shorter token can be guessed; `secrets.token_urlsafe(32)` gives 43 characters."""

LOOPBACK_NAMES = ("localhost",)

REDIS_URL_ENV = "FACESTUDIO_REDIS_URL"
"""Environment variable for a Redis URL with a password (kept off the command line, like the
token)."""

REDIS_SCHEMES = ("redis", "rediss", "unix")

MAX_QUEUE_SIZE = 1000
MAX_RETENTION_S = 7 * 24 * 3600.0
"""A week: results are for downloading, not for storage."""
MAX_JOB_S = 24 * 3600.0
DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:[0-9]{1,3})?")
"""The torch devices a server can run on (checked for existence after torch loads)."""


@dataclass(frozen=True)
class ServeConfig:
    """Settings of `facestudio serve`.

    `token`: required from every client (HTTP `Authorization: Bearer`, or the page's login)
    when set; required to be set when `host` is anything but loopback. `queue_size`: jobs that
    may wait behind the running one before new ones get 429. `retention_s`: how long results
    stay downloadable after their job ends. `max_kept_bytes`: memory for kept results; the
    oldest go first beyond it. `max_job_s`: the time one job may hold the worker (requests
    that would take longer are refused; see `facestudio.app.cost`).

    Resources per client and in total: `max_waiting_bytes`, photos that waiting jobs may hold;
    `max_in_flight_bytes`, request bodies being received at once; `body_idle_s`, the longest
    pause in a body; `max_upload_folder_bytes` and `upload_ttl_s`, what the page's upload
    folder holds and for how long.

    `redis_url`: when set, jobs go to a queue in Redis shared by any number of servers and
    `facestudio worker` processes (docs/serving.md); the server then loads no model.
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    queue_size: int = 8
    retention_s: float = 900.0
    max_kept_bytes: int = 512 * 1024 * 1024
    device: str = "cpu"
    max_job_s: float = 600.0
    max_waiting_bytes: int = 256 * 1024 * 1024
    max_in_flight_bytes: int = 256 * 1024 * 1024
    body_idle_s: float = 15.0
    max_upload_folder_bytes: int = 512 * 1024 * 1024
    upload_ttl_s: float = 600.0
    redis_url: str | None = None

    def check(self) -> None:
        """Refuse settings that would expose the server or cannot work, in one line."""
        if not 0 <= self.port <= 65535:
            raise FaceStudioError(f"port must be 0 to 65535, got {self.port}")
        if not 1 <= self.queue_size <= MAX_QUEUE_SIZE:
            raise FaceStudioError(
                f"the queue size must be 1 to {MAX_QUEUE_SIZE}, got {self.queue_size}"
            )
        _check_seconds("the retention time", self.retention_s, MAX_RETENTION_S, "--retention")
        _check_seconds("the time per job", self.max_job_s, MAX_JOB_S, "--max-job-seconds")
        _check_seconds("the upload lifetime", self.upload_ttl_s, MAX_RETENTION_S, "upload_ttl_s")
        _check_seconds("the body idle time", self.body_idle_s, 3600.0, "body_idle_s")
        for field in fields(self):
            if field.name.endswith("_bytes") and not 0 < getattr(self, field.name) < 2**50:
                raise FaceStudioError(f"{field.name} must be a positive number of bytes")
        if not DEVICE.fullmatch(self.device):
            raise FaceStudioError(
                f"--device must be cpu, cuda, cuda:N, mps or xpu, got '{self.device[:40]}'"
            )
        if self.redis_url is not None:
            check_redis_url(self.redis_url)
        self._check_token()

    def _check_token(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise FaceStudioError(
                f"${TOKEN_ENV} has {len(self.token)} characters; use at least "
                f"{MIN_TOKEN_CHARS}, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.token is None and not is_loopback(self.host):
            raise FaceStudioError(
                f"--host {self.host} lets other machines reach the server, so it needs a token: "
                f"set ${TOKEN_ENV} (e.g. to the output of python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))') or bind to 127.0.0.1"
            )


def _check_seconds(what: str, value: float, top: float, option: str) -> None:
    """A finite positive time of at most `top` seconds (`inf` and `nan` pass `> 0`)."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= top):
        raise FaceStudioError(
            f"{what} must be more than 0 and at most {top:g} seconds ({option}), got {value}"
        )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_device(device: str) -> None:
    """A device this machine has, before a model loads onto it (imports torch)."""
    import torch

    kind = device.split(":")[0]
    backend = getattr(torch, kind, None) if kind != "cpu" else None
    if backend is not None and not backend.is_available():
        raise FaceStudioError(f"--device {device}: this machine has no {kind}; use --device cpu")
    if kind != "cpu" and ":" in device and int(device.split(":")[1]) >= backend.device_count():
        raise FaceStudioError(
            f"--device {device}: this machine has {backend.device_count()} {kind} device(s)"
        )


def token_from_environment() -> str | None:
    """The token from $FACESTUDIO_TOKEN; unset or empty means none."""
    return os.environ.get(TOKEN_ENV) or None


@dataclass(frozen=True)
class WorkerConfig:
    """Settings of `facestudio worker`: one model on one device, taking jobs from Redis.

    `visibility_s`: a job whose worker has not renewed its claim for this long (the worker
    stopped or lost Redis) is taken by another worker. `heartbeat_s`: how often a worker renews
    its claim and announces itself (its announcement lives 3 heartbeats). `max_attempts`: a job
    whose worker stopped this many times fails instead of being tried again.
    """

    redis_url: str
    model: str | None = None
    device: str = "cpu"
    name: str | None = None
    visibility_s: float = 60.0
    heartbeat_s: float = 5.0
    max_attempts: int = 3

    def check(self) -> None:
        check_redis_url(self.redis_url)
        if not DEVICE.fullmatch(self.device):
            raise FaceStudioError(
                f"--device must be cpu, cuda, cuda:N, mps or xpu, got '{self.device[:40]}'"
            )
        _check_seconds("the heartbeat", self.heartbeat_s, 600.0, "--heartbeat")
        _check_seconds("the visibility timeout", self.visibility_s, MAX_JOB_S, "--visibility")
        if self.visibility_s < 2 * self.heartbeat_s:
            raise FaceStudioError(
                f"the visibility timeout ({self.visibility_s:g} s) must be at least twice the "
                f"heartbeat ({self.heartbeat_s:g} s), or live workers lose their jobs"
            )
        if not 1 <= self.max_attempts <= 100:
            raise FaceStudioError(f"--max-attempts must be 1 to 100, got {self.max_attempts}")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", self.name):
            raise FaceStudioError(
                f"--name must be 1 to 64 letters, digits, '.', '_' or '-', got '{self.name[:40]}'"
            )


def check_redis_url(url: str) -> None:
    """A URL the Redis client can use: redis://, rediss:// (TLS) or unix://."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        raise FaceStudioError(
            "--redis must be a redis://, rediss:// or unix:// URL, got one starting "
            f"'{scheme[:20] or url[:8]}'"
        )


def redis_url_from(argument: str) -> str:
    """The URL given to `--redis`, or for `--redis` alone (""), $FACESTUDIO_REDIS_URL. A
    password is refused on the command line, where other users can read the process list."""
    if argument:
        if urllib.parse.urlsplit(argument).password:
            raise FaceStudioError(
                f"--redis holds a password, which other users can see in the process list; "
                f"put the URL in ${REDIS_URL_ENV} and give --redis alone"
            )
        return argument
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        raise FaceStudioError(
            f"--redis without a URL reads ${REDIS_URL_ENV}, which is not set; give "
            "--redis redis://host:6379/0"
        )
    return url
