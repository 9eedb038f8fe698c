"""One client cannot starve the rest of the server's resources (issue 21, section 3).

Real servers (uvicorn on loopback around the bundled model; `facestudio serve` itself for the
upload folder's life across a crash) are given what a hostile or careless client sends:
stalled and dripping uploads, uploads that fill the page's folder, requests of 64-MP
images, a job that would take hours, and a DELETE of a running job. Each is bounded, in
memory and in time, and refused in one line with the status that says whose move it is.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import (  # noqa: F401 (the server's fixtures)
    BOUNDARY,
    GatedStudio,
    astronaut,
    fast_fields,
    free_port,
    get_json,
    multipart_body,
    photo,
    running_server,
    studio,
    upload_to_page,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

MiB = 2**20


# -- helpers ----------------------------------------------------------------------------------


def submit(url: str, photos: list[tuple[str, bytes]], **fields) -> tuple[int, dict, float]:
    """POST a generation: status, JSON answer, seconds it took."""
    parts = [(name, None, str(value).encode()) for name, value in fast_fields(**fields).items()]
    parts += [("person_0", name, data) for name, data in photos]
    body, content_type = multipart_body(parts)
    request = urllib.request.Request(f"{url}/v1/generations", body, {"Content-Type": content_type})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.load(response), time.monotonic() - start
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), time.monotonic() - start


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout} s"
        time.sleep(0.05)


def partial_upload(url: str, declared: int, sent: int) -> socket.socket:
    """A connection that declares a `declared`-byte photo upload, sends `sent` bytes of it
    (a valid start: the part's headers, then the photo's bytes) and stops."""
    where = urlsplit(url)
    connection = socket.create_connection((where.hostname, where.port), timeout=30)
    head = (
        f"POST /v1/generations HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="person_0"; filename="a.png"\r\n\r\n'
    ).encode()
    with contextlib.suppress(OSError):  # refused before it was all sent: the answer says why
        connection.sendall(head + bytes(sent - len(head)))
    return connection


def answer_of(connection: socket.socket) -> tuple[int, dict, bytes]:
    """The status, headers and body the server answered on a raw connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    while len(body) < int(headers.get("content-length", 0)):
        body += connection.recv(65536)
    connection.close()
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def flat_png(side: int) -> bytes:
    """A PNG of `side`² pixels that compresses to almost nothing: a decompression bomb."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buffer, "PNG")
    return buffer.getvalue()


# -- request bodies: memory and time ----------------------------------------------------------


def test_stalled_uploads_hold_bounded_memory_and_are_dropped_in_time(studio, photo):  # noqa: F811
    settings = {"max_in_flight_bytes": 6 * MiB, "body_idle_s": 2.0}
    with running_server(studio, ui=False, **settings) as (url, _app):
        start = time.monotonic()
        connections = [partial_upload(url, 3 * MiB, int(2.5 * MiB)) for _ in range(8)]
        answers = [(*answer_of(c), time.monotonic() - start) for c in connections]
        statuses = [status for status, _, _, _ in answers]
        assert set(statuses) <= {408, 429} and statuses.count(408) <= 2, statuses
        for status, headers, body, seconds in answers:
            assert seconds < 15 and "\n" not in json.loads(body)["detail"]
            assert status == 408 or int(headers["retry-after"]) >= 1
        assert submit(url, [("me.jpg", photo)])[0] == 202  # their room is free again


def test_a_dripping_upload_is_dropped_at_its_deadline(studio):  # noqa: F811
    with running_server(studio, ui=False, body_idle_s=2.0) as (url, _app):
        connection = partial_upload(url, 512 * 1024, 4096)
        start = time.monotonic()
        while time.monotonic() - start < 30:
            try:
                connection.sendall(b"\0" * 16)  # every second: never idle 2 s, but too slow
            except OSError:
                break
            time.sleep(1.0)
        status, _, body = answer_of(connection)
        assert status == 408 and "slower than" in json.loads(body)["detail"]
        assert time.monotonic() - start < 15


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/v1/generations", 7 * MiB),
        ("/gradio_api/upload", 7 * MiB),
        ("/gradio_api/queue/join", 2 * MiB),
    ],
)
def test_a_body_over_what_its_route_may_hold_is_413_before_it_is_sent(studio, path, size):  # noqa: F811
    with running_server(studio, max_in_flight_bytes=6 * MiB) as (url, _app):
        where = urlsplit(url)
        connection = socket.create_connection((where.hostname, where.port), timeout=30)
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode()
        )
        status, _, body = answer_of(connection)  # the head decides: no byte of the body sent
        assert status == 413 and "per request" in json.loads(body)["detail"]


def test_a_chunked_body_is_counted_as_it_arrives(studio):  # noqa: F811
    with running_server(studio, ui=False, max_in_flight_bytes=6 * MiB) as (url, _app):
        where = urlsplit(url)
        connection = socket.create_connection((where.hostname, where.port), timeout=30)
        connection.sendall(
            f"POST /v1/generations HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode()
        )
        start = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="person_0"; '
            'filename="a.png"\r\n\r\n'
        ).encode()
        with contextlib.suppress(OSError):  # refused while sending: the answer says why
            for number in range(8):
                chunk = (start if number == 0 else b"") + bytes(MiB)
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, _, body = answer_of(connection)
        assert status == 413 and "per request" in json.loads(body)["detail"]


# -- the page's upload folder -----------------------------------------------------------------


def test_page_uploads_are_bounded_in_bytes_and_age(studio, photo):  # noqa: F811
    settings = {"max_upload_folder_bytes": 3 * MiB, "upload_ttl_s": 8.0}
    with running_server(studio, **settings) as (url, _app):
        folder = Path(os.environ["GRADIO_TEMP_DIR"])
        assert not folder.is_relative_to("/dev/shm")
        noise = np.random.default_rng(1).integers(0, 256, (700, 700, 3), np.uint8)
        big = io.BytesIO()
        Image.fromarray(noise).save(big, "PNG")  # ~1.4 MiB that does not compress
        statuses = [upload_to_page(url, f"n{i}.png", big.getvalue())[0] for i in range(2)]
        assert statuses == [200, 200]
        status, detail = upload_to_page(url, "n2.png", big.getvalue())
        assert status == 429 and "limit" in json.loads(detail)["detail"]
        assert not list(folder.rglob("n2.png"))
        wait_for(lambda: not list(folder.rglob("*.png")), 40, "expiry of the uploads")
        assert upload_to_page(url, "n3.png", big.getvalue())[0] == 200


def test_the_upload_folder_is_private_on_disk_and_cleaned_after_a_crash(tmp_path, photo):  # noqa: F811
    """Through `facestudio serve`: a killed server's folder is removed by the next start
    (and only such folders), and a server stopped as usual removes its own."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    unmarked = temp / "facestudio-server-unmarked"
    (unmarked / "uploads").mkdir(parents=True)
    (unmarked / "uploads" / "keep.jpg").write_bytes(b"not ours")
    first = Server(temp)
    try:
        own = first.folder()
        assert upload_to_page(first.url, "me.jpg", photo)[0] == 200
        assert list(own.rglob("me.jpg"))
    finally:
        first.kill(signal.SIGKILL)
    assert list(own.rglob("me.jpg")), "a killed server cannot clean up: the next start must"
    second = Server(temp)
    try:
        assert not own.exists() and (unmarked / "uploads" / "keep.jpg").exists()
        mine = second.folder()
        assert stat.S_IMODE(mine.stat().st_mode) == 0o700
        assert json.loads((mine / "owner.json").read_text())["pid"] == second.process.pid
    finally:
        second.kill(signal.SIGTERM)
    # uvicorn shuts down, then ends by the signal it caught (as the shell expects)
    assert second.process.returncode in (0, -signal.SIGTERM) and not mine.exists()


class Server:
    """`facestudio serve` in a subprocess, with $TMPDIR set to `temp`."""

    def __init__(self, temp: Path) -> None:
        self.temp, port = temp, free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "facestudio.interfaces.cli", "serve", "--port", str(port)]
        env = {**os.environ, "TMPDIR": str(temp)}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while True:
            assert self.process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                get_json(f"{self.url}/healthz", timeout=5)
                return
            except OSError:
                time.sleep(0.5)

    def folder(self) -> Path:
        folders = [
            path
            for path in self.temp.glob("facestudio-server-*")
            if (path / "owner.json").exists()
            and json.loads((path / "owner.json").read_text())["pid"] == self.process.pid
        ]
        assert len(folders) == 1, list(self.temp.iterdir())
        return folders[0]

    def kill(self, signal_number: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
        self.process.wait(timeout=120)


# -- decoding ---------------------------------------------------------------------------------


def test_large_images_are_bounded_and_do_not_hold_other_clients(studio, photo):  # noqa: F811
    bomb = flat_png(8000)  # 64 MP in ~0.2 MB
    with running_server(studio, ui=False) as (url, _app):
        status, answer, seconds = submit(url, [(f"b{i}.png", bomb) for i in range(8)])
        assert status == 413 and "megapixels" in answer["detail"] and seconds < 20
        large: list = []
        thread = threading.Thread(
            target=lambda: large.append(submit(url, [("b0.png", bomb), ("b1.png", bomb)]))
        )
        thread.start()
        time.sleep(1.0)  # the large request is being decoded
        status, _, ordinary_s = submit(url, [("me.jpg", photo)])
        assert status == 202
        thread.join()
        assert large[0][0] == 202 and ordinary_s < large[0][2] / 2, (ordinary_s, large[0][2])


# -- the worker's time ------------------------------------------------------------------------


def test_a_job_over_what_the_worker_can_do_is_refused_with_the_advertised_limit(studio, photo):  # noqa: F811
    with running_server(studio, ui=False) as (url, _app):
        model = get_json(f"{url}/v1/models")["models"][0]
        assert model["max_job_seconds"] == 600 and model["max_job_pixel_steps"] > 0
    seconds_per_unit = 600 / model["max_job_pixel_steps"]  # as this machine measured
    twenty_steps = seconds_per_unit * 20 * 64 * 64  # a limit of 20 steps at 64², on any machine
    with running_server(studio, ui=False, max_job_s=twenty_steps) as (url, _app):
        model = get_json(f"{url}/v1/models")["models"][0]
        limit, max_steps = model["max_job_pixel_steps"], model["max_steps"]
        status, answer, _ = submit(
            url, [("me.jpg", photo)], num_images=16, width=64, height=64, num_inference_steps=1000
        )
        assert status == 422 and f"at most {limit:,} pixel-steps" in answer["detail"]
        images, side = next(
            (n, side)
            for side in (64,)  # the one size the bundled model makes for one person
            for n in range(1, 17)
            if 1 <= limit // (n * side * side) < max_steps
        )
        steps = limit // (images * side * side)  # the most steps within the limit
        shape = {"num_images": images, "width": side, "height": side}
        assert submit(url, [("me.jpg", photo)], num_inference_steps=steps + 1, **shape)[0] == 422
        status, answer, _ = submit(url, [("me.jpg", photo)], num_inference_steps=steps, **shape)
        assert status == 202
        request = urllib.request.Request(f"{url}{answer['url']}", method="DELETE")
        assert urllib.request.urlopen(request, timeout=30).status == 204


def test_deleting_a_running_job_stops_it_and_frees_the_worker(studio, photo):  # noqa: F811
    with running_server(studio, ui=False) as (url, _app):
        model = get_json(f"{url}/v1/models")["models"][0]
        steps = min(1000, model.get("max_job_pixel_steps", 10**9) // (64 * 64))
        status, job, _ = submit(url, [("me.jpg", photo)], num_inference_steps=steps)
        assert status == 202
        wait_for(lambda: get_json(f"{url}{job['url']}")["progress"] > 0, 120, "a first step")
        request = urllib.request.Request(f"{url}{job['url']}", method="DELETE")
        assert urllib.request.urlopen(request, timeout=30).status == 204
        wait_for(lambda: get_json(f"{url}/healthz")["queue"]["running"] == 0, 60, "the stop")
        status, quick, _ = submit(url, [("me.jpg", photo)])
        wait_for(lambda: get_json(f"{url}{quick['url']}")["status"] == "succeeded", 120, "next")


def test_health_reports_the_worker_busy_until_a_deleted_job_has_stopped(studio, photo):  # noqa: F811
    gated = GatedStudio(studio)
    with running_server(gated, ui=False) as (url, _app):
        _, job, _ = submit(url, [("me.jpg", photo)], num_inference_steps=50)
        wait_for(lambda: get_json(f"{url}/healthz")["queue"]["running"] == 1, 30, "the start")
        request = urllib.request.Request(f"{url}{job['url']}", method="DELETE")
        assert urllib.request.urlopen(request, timeout=30).status == 204
        time.sleep(0.5)
        assert get_json(f"{url}/healthz")["queue"]["running"] == 1  # still in the worker
        gated.gate.set()
        wait_for(lambda: get_json(f"{url}/healthz")["queue"]["running"] == 0, 30, "the stop")
        _, quick, _ = submit(url, [("me.jpg", photo)])
        wait_for(lambda: get_json(f"{url}{quick['url']}")["status"] == "succeeded", 120, "next")
