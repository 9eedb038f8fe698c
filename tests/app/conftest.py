"""The server's fixtures: the bundled model loaded once, apps built around it, photos in memory.

The photos are the public-domain astronaut portrait that ships with scikit-image, encoded in
memory, so these tests need nothing from ../shared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import io
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestudio.app.config import ServeConfig
from facestudio.app.studio import Studio


@pytest.fixture(scope="session")
def studio() -> Studio:
    return Studio.load("bundled")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def photo(astronaut) -> bytes:
    """A JPEG of one face (the astronaut)."""
    return encode(astronaut, "JPEG")


def encode(pixels: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


class GatedStudio(Studio):
    """The real studio, whose jobs start only when the test opens the gate: a way to hold the
    worker busy, so that the queue's bound and unfinished jobs can be observed."""

    def __init__(self, studio: Studio) -> None:
        self.__dict__.update(studio.__dict__)
        self.gate = threading.Event()

    def run(self, request, progress):
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return super().run(request, progress)


@pytest.fixture
def gated(studio) -> GatedStudio:
    gated = GatedStudio(studio)
    yield gated
    gated.gate.set()


def fast_fields(**extra) -> dict[str, str]:
    """Form fields for a quick generation with the bundled model (64 px, 2 steps)."""
    return {"num_inference_steps": "2", "seed": "5", **extra}


def config(**changes) -> ServeConfig:
    """Settings for a test server. Settings this version of `ServeConfig` does not have are
    left out, so that a test can be run against the code before them (to reproduce a case)."""
    known = {field.name for field in dataclasses.fields(ServeConfig)}
    return ServeConfig(**{name: value for name, value in changes.items() if name in known})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(studio, ui: bool = True, **settings) -> Iterator[tuple[str, object]]:
    """A real server (uvicorn on a loopback port, in a thread) around `studio`, with
    `settings`: its URL and its app, until the block ends (then shut down as on Ctrl-C)."""
    import uvicorn

    from facestudio.app.server import create_app

    port = free_port()
    app = create_app(config(port=port, **settings), studio, ui=ui)
    uvicorn_server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvicorn_server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="session")
def live_server_and_uploads(studio) -> Iterator[tuple[str, Path]]:
    """A real server (uvicorn on a loopback port, in a thread) around the bundled model, and
    the folder its page keeps uploads in (read from $GRADIO_TEMP_DIR at once: a server made
    later in the same process sets it again)."""
    with running_server(studio) as (url, _app):
        yield url, Path(os.environ["GRADIO_TEMP_DIR"])


@pytest.fixture(scope="session")
def live_server(live_server_and_uploads) -> str:
    return live_server_and_uploads[0]


@pytest.fixture(scope="session")
def live_uploads(live_server_and_uploads) -> Path:
    return live_server_and_uploads[1]


def get_json(url: str, timeout: float = 30) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


PAGE_LABELS = {
    "person_0": "Person 1: photos (several photos = multi-shot)",
    "person_1": "Person 2: photos (several photos = multi-shot)",
    "style_image": "Style image",
    "image": "Content image",
    "seed": "Seed",
    "num_inference_steps": "Steps",
}


def file_data(path: str) -> dict:
    """A file reference as the page sends it: a path on the server."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def page_call(url: str, endpoint: str, timeout: float = 120, **values) -> tuple[str, object]:
    """Call one of the page's events (`on_photos`, `on_generate`) as the page's client does,
    with `values` by request field (files as `file_data`) and defaults for the rest: the last
    event's name ("complete", "error") and its data."""
    info = get_json(f"{url}/gradio_api/info")["named_endpoints"][f"/{endpoint}"]
    by_label = {PAGE_LABELS[name]: value for name, value in values.items()}
    data = [by_label.get(p["label"], p["parameter_default"]) for p in info["parameters"]]
    request = urllib.request.Request(
        f"{url}/gradio_api/call/{endpoint}",
        json.dumps({"data": data}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(
        f"{url}/gradio_api/call/{endpoint}/{event_id}", timeout=timeout
    ) as stream:
        lines = stream.read().decode().splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return events[-1], json.loads(payloads[-1])


def upload_to_page(url: str, name: str, data: bytes, timeout: float = 60) -> tuple[int, object]:
    """Upload a file as the page does (`/gradio_api/upload`): the status and the answer (the
    files' paths on the server when accepted, the error text otherwise). Sent the way curl
    sends large bodies, with `Expect: 100-continue`: a refusal that the request's head decides
    is read before any of the body goes out (sent at once, the body can meet the server's
    close and end in a reset instead of the answer)."""
    body, content_type = multipart_body([("files", name, data)])
    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
    try:
        connection.putrequest("POST", "/gradio_api/upload")
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Expect", "100-continue")
        connection.endheaders()
        if _interim_continue(connection.sock):
            connection.send(body)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, json.loads(text) if response.status == 200 else text
    finally:
        connection.close()


def _interim_continue(sock: socket.socket) -> bool:
    """Whether the server's first answer is `100 Continue` (then read past it); otherwise the
    final answer is left unread."""
    head = b""
    while len(head) < len(b"HTTP/1.1 100"):
        if head:
            time.sleep(0.01)  # part of a status line: wait for the rest, not in a busy loop
        head = sock.recv(64, socket.MSG_PEEK)
        if not head:
            return False
    if not head.startswith(b"HTTP/1.1 100"):
        return False
    seen = b""
    while not seen.endswith(b"\r\n\r\n"):
        seen += sock.recv(1)
    return True


BOUNDARY = "facestudio-test-boundary"


def multipart_body(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A whole multipart body of (field, file name or None for a text field, bytes)."""
    chunks = []
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={BOUNDARY}"
