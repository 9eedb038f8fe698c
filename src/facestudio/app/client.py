"""A small client for the HTTP API, on the standard library only (no extra needed).

from facestudio.app.client import FaceStudioClient

client = FaceStudioClient("http://127.0.0.1:7860")          # token=... for a remote server
pngs = client.generate([["me1.jpg", "me2.jpg"]], style_image="painting.png", seed=7)
open("me.png", "wb").write(pngs[0])                          # labelled, as the server made it
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

PathLike = str | os.PathLike


class ClientError(Exception):
    """An error answer of the server: its status and its one-line `detail`."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class FaceStudioClient:
    """Submit generations, follow jobs, download images."""

    def __init__(
        self, url: str = "http://127.0.0.1:7860", token: str | None = None, timeout: float = 60.0
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def generate(
        self,
        people: Sequence[Sequence[PathLike]],
        style_image: PathLike | None = None,
        image: PathLike | None = None,
        wait_s: float = 600.0,
        **fields,
    ) -> list[bytes]:
        """Submit, wait (retrying while the server is busy), and download every image.

        `people`: one list of photo paths per person. `fields`: the API's form fields
        (`seed=7`, `num_images=4`, `regions="auto"`, ...).
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                job = self.submit(people, style_image, image, **fields)
                break
            except ClientError as exc:
                if exc.status != 429 or time.monotonic() + (exc.retry_after or 1) > deadline:
                    raise
                time.sleep(exc.retry_after or 1)
        job = self.wait(job["id"], max(0.0, deadline - time.monotonic()))
        return [self.image(job["id"], n) for n in range(len(job["images"]))]

    def submit(
        self,
        people: Sequence[Sequence[PathLike]],
        style_image: PathLike | None = None,
        image: PathLike | None = None,
        **fields,
    ) -> dict:
        """Queue a generation; the job (its `id`, `status`, `url`)."""
        files = [(f"person_{n}", Path(p)) for n, photos in enumerate(people) for p in photos]
        files += [
            (name, Path(p)) for name, p in (("style_image", style_image), ("image", image)) if p
        ]
        body, content_type = _multipart({k: str(v) for k, v in fields.items()}, files)
        return self._json("POST", "/v1/generations", body, {"Content-Type": content_type})

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, timeout: float = 600.0, poll_s: float = 0.5) -> dict:
        """The job once it has succeeded; `ClientError` (status 422) with its error if it failed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] == "succeeded":
                return job
            if job["status"] == "failed":
                raise ClientError(422, job["error"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout:.0f} s")
            time.sleep(poll_s)

    def image(self, job_id: str, index: int) -> bytes:
        """Image `index` of a finished job: the PNG bytes exactly as the server made them."""
        return self._request("GET", f"/v1/jobs/{job_id}/images/{index}")

    def delete(self, job_id: str) -> None:
        """Delete a job's images now (or cancel it while it waits)."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def models(self) -> dict:
        return self._json("GET", "/v1/models")

    def health(self) -> dict:
        return self._json("GET", "/healthz")

    def _json(self, method: str, path: str, body: bytes | None = None, headers=None) -> dict:
        return json.loads(self._request(method, path, body, headers) or b"{}")

    def _request(self, method: str, path: str, body: bytes | None = None, headers=None) -> bytes:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise _client_error(exc) from None


def _client_error(exc: urllib.error.HTTPError) -> ClientError:
    text = exc.read().decode("utf-8", "replace")
    try:
        detail = json.loads(text).get("detail", text)
    except (json.JSONDecodeError, AttributeError):
        detail = text.strip() or exc.reason
    retry = exc.headers.get("Retry-After")
    return ClientError(exc.code, str(detail), float(retry) if retry else None)


def _multipart(fields: dict[str, str], files: list[tuple[str, Path]]) -> tuple[bytes, str]:
    boundary = f"facestudio-{secrets.token_hex(16)}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, path in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{path.name.replace(chr(34), "%22")}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
