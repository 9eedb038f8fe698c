"""The HTTP API in-process (FastAPI's TestClient) on the bundled model: every status code it
promises, the PNG served byte for byte with its label and credentials, the CLI's messages for
bad input, the queue bound, the token, retention, and uploads that never touch the disk."""

from __future__ import annotations

import io
import json
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facestudio.app import forms
from facestudio.app.server import create_app
from facestudio.fields import speak
from facestudio.interfaces.cli import main
from facestudio.interfaces.generate_command import CLI_NAMES
from facestudio.pipeline import limits
from facestudio.pipeline.request import GenerationRequest
from facestudio.provenance.credentials import read_credentials
from tests.app.conftest import config, encode, fast_fields

TOKEN = "a-test-token-of-enough-length"


@pytest.fixture
def client(studio):
    with TestClient(create_app(config(), studio, ui=False)) as client:
        yield client


def submit(client, photo, **fields):
    files = [("person_0", ("astronaut.jpg", photo, "image/jpeg"))]
    return client.post("/v1/generations", files=files, data=fast_fields(**fields))


def finished(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def one_line(response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    return detail


def test_a_generation_is_queued_run_and_its_pngs_served_exactly_as_made(client, photo):
    accepted = submit(client, photo, num_images="2")
    assert accepted.status_code == 202
    job = accepted.json()
    assert accepted.headers["location"] == job["url"] == f"/v1/jobs/{job['id']}"
    done = finished(client, job["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert [image["seed"] for image in done["images"]] == [5, 6]
    response = client.get(done["images"][1]["url"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert "attachment" in response.headers["content-disposition"]
    assert client.get(done["images"][1]["url"]).content == response.content
    image = Image.open(io.BytesIO(response.content))
    settings = json.loads(image.info["facestudio"])
    assert "generated" in image.info["Description"].lower() and image.size == (64, 64)
    assert settings["seed"] == 6 and settings["steps"] == 2 and settings["generated"] is True
    assert settings["people"][0]["sources"][0]["photo"] == "astronaut.jpg"
    credentials = read_credentials(response.content)
    assert credentials.present and credentials.intact and credentials.generated


def test_bad_input_is_422_with_the_cli_message_in_the_apis_own_names(
    client, photo, tmp_path, capsys
):
    response = submit(client, photo, prompt="an astronaut on the moon")
    assert response.status_code == 422
    assert "(`style_image`)" in one_line(response) and "--" not in one_line(response)
    code = main(
        [
            "generate",
            "--example",
            "--prompt",
            "an astronaut on the moon",
            "-o",
            str(tmp_path / "x.png"),
        ]
    )
    cli_error = capsys.readouterr().err.strip().splitlines()
    in_cli_words = speak(one_line(response), CLI_NAMES)
    assert "(--style IMAGE)" in in_cli_words
    assert code == 2 and cli_error == [f"facestudio: error: {in_cli_words}"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"strength": "0.5"}, "add the image to start from (`image`) or drop `strength`"),
        ({"width": "256", "height": "256"}, "64×64 for 1 person, not 256×256"),
        ({"width": "100"}, "64×64 for 1 person, not 100×64"),
    ],
)
def test_422_messages_name_form_fields_never_cli_options(client, photo, fields, says):
    response = submit(client, photo, **fields)
    assert response.status_code == 422 and says in one_line(response)
    assert not any(option in one_line(response) for option in CLI_NAMES.values())


def test_job_warnings_name_form_fields_never_cli_options(client, astronaut):
    pair = encode(np.hstack([astronaut, astronaut]), "JPEG")  # two faces in one photo
    files = [("person_0", ("pair.jpg", pair, "image/jpeg"))]
    job = client.post("/v1/generations", files=files, data=fast_fields()).json()
    done = finished(client, job["id"])
    assert done["status"] == "succeeded", done
    (warning,) = done["warnings"]
    assert "'pair.jpg' has 2 faces" in warning and "choose another with `face_index`" in warning
    assert "--" not in warning


def test_two_people_at_the_default_size_are_two_portraits_side_by_side(client, photo):
    files = [
        ("person_0", ("astronaut.jpg", photo, "image/jpeg")),
        ("person_1", ("astronaut-again.jpg", photo, "image/jpeg")),
    ]
    job = client.post("/v1/generations", files=files, data=fast_fields()).json()
    done = finished(client, job["id"])
    assert done["status"] == "succeeded", done
    image = Image.open(io.BytesIO(client.get(done["images"][0]["url"]).content))
    assert image.size == (128, 64)
    assert len(json.loads(image.info["facestudio"])["regions"]["boxes"]) == 2


def test_models_advertise_the_sizes_the_model_makes_not_a_bare_max_side(client):
    model = client.get("/v1/models").json()["models"][0]
    sizes = model["sizes"]
    assert "max_side" not in model and sizes["declared"] is True
    assert sizes["trained"] == [64, 64] and sizes["people"] == "side_by_side"
    assert sizes["supported"][:2] == [
        {"people": 1, "width": 64, "height": 64},
        {"people": 2, "width": 128, "height": 64},
    ]
    assert len(sizes["supported"]) == limits.MAX_PEOPLE


@pytest.mark.parametrize(
    ("fields", "files", "says"),
    [
        ({"steps": "4"}, None, "unknown field(s): steps"),
        ({"num_inference_steps": "many"}, None, "num_inference_steps must be a whole number"),
        ({"num_images": str(limits.MAX_IMAGES_PER_CALL + 1)}, None, "number of images"),
        ({"regions": "0,0,10"}, None, "region 0 has 3 numbers"),
        ({"strength": "0.5"}, None, "strength was given without a content image"),
        (
            {},
            [("person_0", ("notes.jpg", b"not an image", "image/jpeg"))],
            "cannot read 'notes.jpg'",
        ),
        ({}, [("person_2", ("a.jpg", b"x", "image/jpeg"))], "number them from person_0"),
    ],
)
def test_each_kind_of_bad_input_is_refused_before_queueing(client, photo, fields, files, says):
    files = files or [("person_0", ("astronaut.jpg", photo, "image/jpeg"))]
    response = client.post("/v1/generations", files=files, data=fast_fields(**fields))
    assert response.status_code == 422 and says in one_line(response)
    assert client.get("/healthz").json()["queue"]["waiting"] == 0


def test_a_photo_without_a_face_fails_its_job_with_one_line(client, astronaut):
    blank = encode(np.full((200, 200, 3), 128, np.uint8))
    files = [("person_0", ("wall.png", blank, "image/png"))]
    job = client.post("/v1/generations", files=files, data=fast_fields()).json()
    done = finished(client, job["id"])
    assert done["status"] == "failed" and done["error"].startswith("no face found in 'wall.png'")
    response = client.get(f"/v1/jobs/{job['id']}/images/0")
    assert response.status_code == 409 and "no face found" in one_line(response)


def test_uploads_over_the_limits_are_413(client, photo, monkeypatch):
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", len(photo) - 1)
    response = submit(client, photo)
    assert response.status_code == 413 and "per image" in one_line(response)
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", len(photo))
    monkeypatch.setattr(limits, "MAX_REQUEST_BYTES", len(photo))
    monkeypatch.setattr(forms, "FORM_OVERHEAD_BYTES", 0)
    response = submit(client, photo)
    assert response.status_code == 413 and "per request" in one_line(response)


def test_a_full_queue_answers_429_with_retry_after_and_accepted_jobs_complete(gated, photo):
    with TestClient(create_app(config(queue_size=1), gated, ui=False)) as client:
        running = submit(client, photo).json()
        while client.get(running["url"]).json()["status"] != "running":
            time.sleep(0.01)
        waiting = submit(client, photo).json()
        assert client.get(waiting["url"]).json()["position"] == 0
        busy = submit(client, photo)
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        assert "busy" in one_line(busy)
        unfinished = client.get(f"{running['url']}/images/0")
        assert unfinished.status_code == 409 and "running" in one_line(unfinished)
        gated.gate.set()
        assert finished(client, running["id"])["status"] == "succeeded"
        assert finished(client, waiting["id"])["status"] == "succeeded"


def test_unknown_jobs_and_images_are_404_and_a_deleted_job_is_gone(client, photo):
    assert client.get("/v1/jobs/nope").status_code == 404
    job = submit(client, photo).json()
    finished(client, job["id"])
    missing = client.get(f"{job['url']}/images/1")
    assert missing.status_code == 404 and "images 0 to 0" in one_line(missing)
    assert client.get(f"{job['url']}/images/x").status_code == 422
    assert client.delete(job["url"]).status_code == 204
    assert client.get(job["url"]).status_code == 404
    assert client.get(f"{job['url']}/images/0").status_code == 404
    assert client.delete(job["url"]).status_code == 404


def test_results_are_deleted_after_the_retention_time(studio, photo):
    with TestClient(create_app(config(retention_s=1.0), studio, ui=False)) as client:
        job = submit(client, photo).json()
        done = finished(client, job["id"])
        assert done["expires"] - done["finished"] == pytest.approx(1.0)
        time.sleep(1.2)
        assert client.get(job["url"]).status_code == 404


def test_a_token_guards_everything_but_health_and_the_login(studio, photo):
    with TestClient(create_app(config(token=TOKEN), studio, ui=False)) as client:
        denied = client.get("/v1/models")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert (
            client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        )
        assert submit(client, photo).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/v1/models", headers=bearer).status_code == 200
        assert client.get("/healthz").status_code == 200
        page = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert client.post("/login", data={"token": "wrong"}).status_code == 401
        login = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
        assert client.get("/v1/models").status_code == 200  # the cookie now


def test_models_health_and_the_openapi_document(client):
    model = client.get("/v1/models").json()["models"][0]
    assert model["name"] == "bundled" and model["text_prior"] is False
    assert model["native_size"] == 64 and model["max_images"] == limits.MAX_IMAGES_PER_CALL
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queue"]["max_waiting"] == 8
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/generations", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/images/{index}"} <= set(
        spec["paths"]
    )
    form = spec["paths"]["/v1/generations"]["post"]["requestBody"]["content"]["multipart/form-data"]
    text_fields = {n for n in form["schema"]["properties"] if not n.startswith("person_")}
    text_fields -= {"style_image", "image"}
    GenerationRequest.from_mapping(dict.fromkeys(text_fields, ""))  # every documented name is real


def test_uploaded_photos_are_parsed_in_memory_never_spooled_to_disk(client, monkeypatch):
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    big = encode(noise)  # a PNG over 1 MiB, which Starlette's own parser spools to disk
    assert len(big) > 2**20
    opened = []
    real = tempfile.TemporaryFile
    monkeypatch.setattr(
        tempfile, "TemporaryFile", lambda *a, **k: opened.append(a) or real(*a, **k)
    )
    files = [("person_0", ("big.png", big, "image/png"))]
    response = client.post("/v1/generations", files=files, data=fast_fields())
    assert response.status_code == 202 and opened == []
    finished(client, response.json()["id"])


def test_the_page_and_the_api_are_served_together(live_server):
    with urllib.request.urlopen(live_server + "/") as page:
        assert page.status == 200 and b"<html" in page.read()
    with urllib.request.urlopen(live_server + "/v1/models") as models:
        assert json.load(models)["models"][0]["name"] == "bundled"


def test_an_unexpected_server_error_is_500_with_one_line_and_no_internals(studio):
    class Broken(type(studio)):
        def __init__(self) -> None:
            self.__dict__.update(studio.__dict__)

        def describe(self) -> dict:
            raise RuntimeError("secret detail at /srv/facestudio/app/studio.py:99")

    app = create_app(config(), Broken(), ui=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/models")
        assert response.status_code == 500
        assert "secret" not in one_line(response) and "server log" in one_line(response)
