"""The server's fixtures: the bundled model loaded once, apps built around it, photos in memory.

The photos are the public-domain astronaut portrait that ships with scikit-image, encoded in
memory, so these tests need nothing from ../shared.
"""

from __future__ import annotations

import io
import socket
import threading
import time

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
    return ServeConfig(**changes)


@pytest.fixture(scope="session")
def live_server(studio) -> str:
    """A real server (uvicorn on a loopback port, in a thread) around the bundled model."""
    import uvicorn

    from facestudio.app.server import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(config(port=port), studio)
    uvicorn_server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvicorn_server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(timeout=30)
