"""The server's settings: where it listens, who may use it, how much work it holds."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from facestudio.errors import FaceStudioError

TOKEN_ENV = "FACESTUDIO_TOKEN"
"""Environment variable that holds the bearer token (never a command-line argument, which
other users of the machine can read in the process list)."""

MIN_TOKEN_CHARS = 16
"""A shorter token can be guessed; `secrets.token_urlsafe(32)` gives 43 characters."""

LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of `facestudio serve`.

    `token`: required from every client (HTTP `Authorization: Bearer`, or the page's login)
    when set; required to be set when `host` is anything but loopback. `queue_size`: jobs that
    may wait behind the running one before new ones get 429. `retention_s`: how long results
    stay downloadable after their job ends. `max_kept_bytes`: memory for kept results; the
    oldest go first beyond it.
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    queue_size: int = 8
    retention_s: float = 900.0
    max_kept_bytes: int = 512 * 1024 * 1024
    device: str = "cpu"

    def check(self) -> None:
        """Refuse settings that would expose the server or cannot work, in one line."""
        if not 0 <= self.port <= 65535:
            raise FaceStudioError(f"port must be 0 to 65535, got {self.port}")
        if self.queue_size < 1:
            raise FaceStudioError(f"the queue size must be at least 1, got {self.queue_size}")
        if not self.retention_s > 0:
            raise FaceStudioError(
                f"the retention time must be positive seconds, got {self.retention_s}"
            )
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


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def token_from_environment() -> str | None:
    """The token from $FACESTUDIO_TOKEN; unset or empty means none."""
    return os.environ.get(TOKEN_ENV) or None
