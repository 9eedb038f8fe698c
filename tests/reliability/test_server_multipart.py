"""Malformed bodies, ambiguous fields, impossible settings, long quotes (issue 21, section 4).

A real server (uvicorn on loopback, the bundled model) gets raw request bodies: cut in the
middle of a photo, without the closing boundary, empty, with no parts: each is 400 and no
job. File fields that name a person ambiguously (`person_00` beside `person_0`, other
digits) are 422. Every message that quotes the input stays short, whatever its length. And
`facestudio serve` refuses impossible settings (`--retention inf`) in one line, before any
heavy import or the model.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.app.conftest import (  # noqa: F401 (the server's fixtures)
    BOUNDARY,
    astronaut,
    fast_fields,
    get_json,
    multipart_body,
    photo,
    running_server,
    studio,
)

MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture(scope="module")
def server(studio):  # noqa: F811
    with running_server(studio, ui=False) as (url, _app):
        yield url


def post(url: str, body: bytes, content_type: str | None = MULTIPART) -> tuple[int, str, int]:
    """POST exactly `body` to /v1/generations: status, detail, and the answer's length."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    connection.request("POST", "/v1/generations", body, headers)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    detail = json.loads(raw).get("detail", "")
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    return response.status, detail, len(raw)


def whole(photo: bytes, **fields: str) -> bytes:  # noqa: F811
    parts = [(name, None, value.encode()) for name, value in fast_fields(**fields).items()]
    body, _ = multipart_body([*parts, ("person_0", "me.jpg", photo)])
    return body


def bodies(photo: bytes) -> dict[str, tuple[bytes, str | None]]:  # noqa: F811
    full = whole(photo)
    cut_at = full.index(photo) + len(photo) // 2
    return {
        "cut in the middle of the photo": (full[:cut_at], MULTIPART),
        "without its closing boundary": (full[: full.rindex(b"--" + BOUNDARY.encode())], MULTIPART),
        "closing boundary cut short": (full[:-6], MULTIPART),
        "cut inside a part's headers": (full[: full.index(b"filename") + 4], MULTIPART),
        "empty": (b"", MULTIPART),
        "no parts": (f"--{BOUNDARY}--\r\n".encode(), MULTIPART),
        "no boundary in the content type": (full, "multipart/form-data"),
        "another boundary than declared": (full, "multipart/form-data; boundary=other"),
        "not multipart": (photo, "image/jpeg"),
        "no content type": (full, None),
    }


@pytest.mark.parametrize("case", list(bodies(b"x")))
def test_a_malformed_body_is_400_and_no_job(server, photo, case):  # noqa: F811
    body, content_type = bodies(photo)[case]
    status, detail, _ = post(server, body, content_type)
    assert status == 400, detail
    assert get_json(f"{server}/healthz")["queue"]["waiting"] == 0


def test_the_same_body_whole_is_accepted(server, photo):  # noqa: F811
    status, _, _ = post(server, whole(photo))  # the control: the cases above are its cuts
    assert status == 202


@pytest.mark.parametrize(
    "names",
    [
        ("person_0", "person_00"),
        ("person_00",),
        ("person_0", "person_01"),
        ("person_0", "person_\u0661"),  # ARABIC-INDIC DIGIT ONE
        ("person_0", "person_\u00b9"),  # SUPERSCRIPT ONE
        ("person_\uff10",),  # FULLWIDTH DIGIT ZERO
        ("Person_0",),
        ("person_0 ",),
        ("person_+1", "person_0"),
    ],
)
def test_a_file_field_that_names_a_person_ambiguously_is_422(server, photo, names):  # noqa: F811
    parts = [(name, "me.jpg", photo) for name in names]
    body, _ = multipart_body([*parts, ("num_inference_steps", None, b"2")])
    status, detail, _ = post(server, body)
    assert status == 422 and "ambiguous" in detail, detail
    assert get_json(f"{server}/healthz")["queue"]["waiting"] == 0


LONG = 60_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", "6" * LONG),
        ("seed", "-" + "9" * LONG),
        ("num_images", "1" * LONG),
        ("regions", "1," * (LONG // 2)),
        ("mix_weights", "x" * LONG),
        ("face_index", "y" * LONG),
        ("z" * 4000, "1"),  # a part's header holds at most 4 KiB
    ],
)
def test_an_error_quotes_at_most_a_bounded_part_of_the_input(server, photo, field, value):  # noqa: F811
    parts = [(field, None, value.encode()), ("person_0", "me.jpg", photo)]
    body, _ = multipart_body(parts)
    status, detail, length = post(server, body)
    assert status == 422 and length < 1000, (status, length)
    assert "…" in detail  # the quote keeps the input's ends


def test_a_long_file_name_is_quoted_short_and_a_longer_header_is_413(server):
    body, _ = multipart_body([("person_0", "n" * 4000 + ".jpg", b"not an image")])
    status, detail, length = post(server, body)
    assert status == 422 and detail.startswith("cannot read") and length < 1000
    body, _ = multipart_body([("person_0", "n" * LONG + ".jpg", b"not an image")])
    status, detail, length = post(server, body)
    assert status == 413 and "header" in detail and length < 1000


SETTINGS = [
    ["--retention", "inf"],
    ["--retention", "nan"],
    ["--retention", "1e400"],
    ["--retention", "0"],
    ["--retention", "99999999999"],
    ["--queue-size", "10000000000"],
    ["--queue-size", "-1"],
    ["--max-job-seconds", "inf"],
    ["--max-job-seconds", "0"],
    ["--device", "cuda; rm -rf /"],
    ["--port", "70000"],
]


@pytest.mark.parametrize("arguments", SETTINGS, ids=" ".join)
def test_serve_refuses_impossible_settings_in_one_line_before_loading_anything(arguments):
    code = (
        "import sys\n"
        "from facestudio.interfaces.cli import main\n"
        f"code = main(['serve', *{arguments!r}])\n"
        "heavy = sorted({'torch', 'gradio', 'fastapi', 'uvicorn', 'diffusers'} & set(sys.modules))\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    errors = done.stderr.strip().splitlines()
    assert done.stdout.strip() == "2 []", done.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith("facestudio: error:"), errors
