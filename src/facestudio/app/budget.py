"""Request bodies: bounded in size per route, in total over all requests, and in time.

Every request body reaches the server through `BodyBudget`, an ASGI middleware around the
whole app (API and page). It refuses, in one line and before the route reads anything:

- 413, a body over its route's limit (`Route.max_bytes`; 1 MiB for routes without one);
- 429 with `Retry-After`, a body that does not fit in what the server may hold of bodies at
  once (`max_in_flight`: memory of all requests together, so that a few clients sending large
  uploads slowly cannot take it all), or that the route's `admit` refuses (a full upload
  folder);
- 408, a body that stalls (`idle_s` without a byte) or arrives slower than `min_rate`.

The bytes a request has received count against `max_in_flight` until its response is sent
(the route holds them while it works). A refusal in the middle of a body is sent instead of
whatever the route would have answered, so a route never sees a partial body as a whole.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from facestudio.app.messages import one_line
from facestudio.errors import FaceStudioError

SMALL_BODY_BYTES = 1024 * 1024
"""Limit of routes without their own: JSON calls of the page, the login form."""


@dataclass(frozen=True)
class Route:
    """A route's own body limit (called per request: the limit may depend on settings), and
    an optional `admit(size)` that raises a `Refusal` when the route cannot take `size` now."""

    max_bytes: Callable[[], int]
    admit: Callable[[int], None] | None = None


@dataclass(frozen=True)
class BodyLimits:
    """`max_in_flight`: bytes of bodies all requests together may hold. `idle_s`: longest
    wait for the next piece of a body. `min_rate`: bytes/s a body must average, after
    `idle_s` of grace. `routes`: limits by path."""

    max_in_flight: int
    idle_s: float = 15.0
    min_rate: float = 256 * 1024
    routes: Mapping[str, Route] = field(default_factory=dict)


class Refusal(FaceStudioError):
    """A body the server will not take: the HTTP status, the one-line reason, when to retry."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BodyBudget:
    """ASGI middleware applying `BodyLimits` to every HTTP request."""

    def __init__(self, app, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(self, scope, receive, send)
        try:
            body.admit()
        except Refusal as refusal:
            await _refuse(send, refusal)
            return
        try:
            await self.app(scope, body.receive, body.send)
        except Refusal:
            pass  # raised by `body.receive` to stop the route; answered below
        finally:
            self.in_flight -= body.held
        if body.refusal is not None and not body.responded:
            await _refuse(send, body.refusal)


class _Body:
    """One request's body as it arrives: counted, timed, and refused when over a bound."""

    def __init__(self, budget: BodyBudget, scope, receive, send) -> None:
        self.budget, self.limits = budget, budget.limits
        self._receive, self._send = receive, send
        self.scope = scope
        self.path = scope.get("path", "")
        self.route = self.limits.routes.get(self.path)
        self.declared: int | None = None
        self.received = self.held = 0
        self.complete = False
        self.started = self.last = time.monotonic()
        self.refusal: Refusal | None = None
        self.responded = False  # a response (the route's or our refusal) has started

    @property
    def cap(self) -> int:
        route_cap = self.route.max_bytes() if self.route else SMALL_BODY_BYTES
        return min(route_cap, self.limits.max_in_flight)

    def admit(self) -> None:
        """Refusals that the request's head already decides."""
        self.declared = _content_length(self.scope)
        no_body = self.declared == 0 or (
            self.declared is None and not _has_header(self.scope, b"transfer-encoding")
        )
        self.complete = no_body
        if self.declared is not None and self.declared > self.cap:
            raise _too_large(self.cap, self.path)
        if (self.declared or 0) > self.limits.max_in_flight - self.budget.in_flight:
            raise self._busy()
        if self.route is not None and self.route.admit is not None and not no_body:
            self.route.admit(self.declared if self.declared is not None else self.cap)

    async def receive(self) -> dict:
        if self.refusal is not None:
            return {"type": "http.disconnect"}  # a route that reads on gets no more
        if self.complete:
            return await self._receive()  # the body is read: e.g. a wait for the disconnect
        try:
            message = await asyncio.wait_for(self._receive(), self._wait_s())
        except TimeoutError:
            self._stop(self._late())
        if message["type"] == "http.request":
            self._count(len(message.get("body", b"")))
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            if self.responded:
                return
            self.responded = True
            if self.refusal is not None:
                await _refuse(self._send, self.refusal)  # instead of the route's answer
                return
        if self.refusal is None:
            await self._send(message)

    def _count(self, size: int) -> None:
        self.received += size
        self.last = time.monotonic()
        if self.received > self.cap:
            self._stop(_too_large(self.cap, self.path))
        if self.budget.in_flight + size > self.limits.max_in_flight:
            self._stop(self._busy())
        self.budget.in_flight += size
        self.held += size

    def _wait_s(self) -> float:
        expected = self.declared if self.declared is not None else self.cap
        deadline = self.started + self.limits.idle_s + expected / self.limits.min_rate
        return max(0.001, min(self.limits.idle_s, deadline - time.monotonic()))

    def _late(self) -> Refusal:
        if time.monotonic() - self.last >= self.limits.idle_s * 0.99:
            reason = f"nothing arrived for {self.limits.idle_s:g} s"
        else:
            reason = f"it arrived slower than {self.limits.min_rate / 1024:.0f} KiB/s"
        return Refusal(408, f"the request body was not received in time: {reason}; send it again")

    def _busy(self) -> Refusal:
        return Refusal(
            429,
            f"the server is receiving {self.budget.in_flight / 2**20:.1f} MiB of other requests, "
            f"its limit is {self.limits.max_in_flight / 2**20:.1f} MiB; try again shortly",
            retry_after=max(1, math.ceil(self.limits.idle_s)),
        )

    def _stop(self, refusal: Refusal) -> None:
        self.refusal = refusal
        raise refusal


def _content_length(scope) -> int | None:
    values = {v.strip() for k, v in scope.get("headers") or [] if k == b"content-length"}
    if not values:
        return None
    text = values.pop().decode("latin-1")
    if values or not text.isdigit() or len(text) > 18:
        raise Refusal(400, "Content-Length must be one whole number of bytes")
    return int(text)


def _has_header(scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope.get("headers") or [])


def _too_large(cap: int, path: str) -> Refusal:
    return Refusal(413, f"the request is over {_size(cap)}, the limit per request to {path}")


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**10:.1f} KiB" if count >= 2**10 else f"{count} bytes"


async def _refuse(send, refusal: Refusal) -> None:
    body = json.dumps({"detail": one_line(str(refusal))}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if refusal.retry_after is not None:
        headers.append((b"retry-after", str(refusal.retry_after).encode()))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
