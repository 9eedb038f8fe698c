"""The page reads only files that a client uploaded to this server (issue 21, section 1).

A real server (uvicorn on loopback, the bundled model, the page mounted) is called as the
page's client calls it, with file references a hostile client chooses: a photo elsewhere on
the machine by absolute and relative path, `..` out of the upload folder, a link inside it
to a file outside, /proc and /etc files, a FIFO, URLs, URL-encoding, the folder itself.
Every one is refused with the same line whether the file exists or not; nothing is copied
into the server's folders, previewed, or queued.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.app.conftest import (  # noqa: F401 (the server's fixtures)
    astronaut,
    file_data,
    get_json,
    multipart_body,
    page_call,
    photo,
    running_server,
    studio,
    upload_to_page,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

REFUSED = "is not a file uploaded to this server"


@pytest.fixture(scope="module")
def server(studio):  # noqa: F811
    with running_server(studio) as (url, _app):
        yield url, Path(os.environ["GRADIO_TEMP_DIR"])


@pytest.fixture(scope="module")
def secret(tmp_path_factory, photo) -> Path:  # noqa: F811
    """A private photo of someone, elsewhere on the server's machine."""
    path = tmp_path_factory.mktemp("private") / "holiday.jpg"
    path.write_bytes(photo)
    return path


@pytest.fixture(scope="module")
def hostile(server, secret) -> dict[str, str]:
    """The references, with the FIFO beside the secret and the link in the upload folder."""
    _, folder = server
    os.mkfifo(secret.with_name("pipe.jpg"))
    (folder / "link.jpg").symlink_to(secret)
    return references(secret, folder)


def references(secret: Path, folder: Path) -> dict[str, str]:
    """Hostile references, by case name."""
    fifo, link = secret.with_name("pipe.jpg"), folder / "link.jpg"
    escape = "/".join([".."] * len(folder.parts)) + str(secret)
    return {
        "absolute path": str(secret),
        "relative path": os.path.relpath(secret),
        "'..' out of the upload folder": f"{folder}/{escape}",
        "link in the upload folder to a file outside": str(link),
        "missing file": str(secret.with_name("missing.jpg")),
        "/etc/passwd": "/etc/passwd",
        "/proc file": "/proc/self/environ",
        "FIFO": str(fifo),
        "URL-encoded path": str(secret).replace("/", "%2F"),
        "URL of the server itself": "http://127.0.0.1:1/healthz",
        "file: URL": f"file://{secret}",
        "the upload folder itself": str(folder),
        "NUL byte": str(folder / "x.jpg\0.png"),
        "10,000-character path": "/" + "a" * 10_000 + ".jpg",
    }


CASES = list(references(Path("/x/holiday.jpg"), Path("/folder")))


def assert_refused(event: str, data, *, quoted_name: str | None = None) -> str:
    assert event == "error", data
    message = data["error"]
    assert isinstance(message, str) and REFUSED in message and "\n" not in message
    assert len(message) < 400
    if quoted_name is not None:
        assert f"'{quoted_name}'" in message
    return message


def assert_nothing_copied(folder: Path, *originals: bytes) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert path.read_bytes() not in originals, f"{path} is a copy of a refused file"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("endpoint", ["on_photos", "on_generate"])
def test_a_photo_the_client_did_not_upload_is_refused(server, secret, hostile, endpoint, case):
    url, folder = server
    event, data = page_call(url, endpoint, timeout=30, person_0=[file_data(hostile[case])])
    assert_refused(event, data)
    assert_nothing_copied(folder, secret.read_bytes(), Path("/etc/passwd").read_bytes())
    assert get_json(f"{url}/healthz")["queue"]["waiting"] == 0


@pytest.mark.parametrize("field", ["image", "style_image"])
def test_the_image_widgets_refuse_the_same_references(server, secret, hostile, field):
    url, folder = server
    for reference in (str(secret), str(folder / "link.jpg"), "/proc/self/environ"):
        event, data = page_call(url, "on_generate", timeout=30, **{field: file_data(reference)})
        assert_refused(event, data)
    assert_nothing_copied(folder, secret.read_bytes())


@pytest.mark.parametrize("case", ["absolute path", "/etc/passwd", "FIFO", "10,000-character path"])
def test_a_file_reference_sent_for_any_other_widget_is_refused(server, secret, hostile, case):
    """gradio looks for file references in every input, a text box's included."""
    url, folder = server
    event, data = page_call(url, "on_generate", timeout=30, seed=file_data(hostile[case]))
    assert_refused(event, data)
    assert_nothing_copied(folder, secret.read_bytes(), Path("/etc/passwd").read_bytes())
    assert get_json(f"{url}/healthz", timeout=10)["status"] == "ok"


def test_a_missing_file_and_an_existing_one_get_the_same_answer(server, secret, tmp_path):
    """No probing for which files exist: the answer depends on the reference only."""
    url, _ = server
    missing = tmp_path / "elsewhere" / secret.name
    answers = [
        page_call(url, "on_photos", timeout=30, person_0=[file_data(str(path))])
        for path in (secret, missing, Path("/root/.ssh") / secret.name)
    ]
    messages = [assert_refused(*answer, quoted_name=secret.name) for answer in answers]
    assert len(set(messages)) == 1


def test_a_photo_uploaded_to_the_server_is_previewed_and_generated_from(server, photo):  # noqa: F811
    url, folder = server
    status, paths = upload_to_page(url, "me.jpg", photo)
    assert status == 200 and Path(paths[0]).is_relative_to(folder)
    event, data = page_call(url, "on_photos", person_0=[file_data(paths[0])])
    assert event == "complete" and "me.jpg: 1 face, using face 0" in data[1]
    event, data = page_call(
        url, "on_generate", person_0=[file_data(paths[0])], num_inference_steps=2, seed="3"
    )
    assert event == "complete" and data[0].startswith("Done: 1 image"), data


def test_the_api_takes_photos_only_as_uploaded_bytes(server, secret):
    """A path given where the API expects a photo is an unknown text field, never opened."""
    url, _ = server
    body, content_type = multipart_body([("person_0", None, str(secret).encode())])
    request = urllib.request.Request(f"{url}/v1/generations", body, {"Content-Type": content_type})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 422
    assert "unknown field(s): person_0" in refused.value.read().decode()
