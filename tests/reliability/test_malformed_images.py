"""Images that trip Pillow's decoders (an oversized text chunk: `ValueError`; garbage EXIF:
`SyntaxError`; a bomb found while loading: `DecompressionBombError`) are one line in every
front end: `faces`, `generate` (before the model loads), `inspect`, the HTTP API (a 422), and
a skipped photo in `prepare`. One loader, `facestudio.images`, owns every decoder error."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from facestudio.errors import ImageLoadError
from facestudio.images import image_to_rgb_array, load_image
from facestudio.interfaces import generate_command
from tests.conftest import shared_file
from tests.reliability import malformed
from tests.reliability.helpers import FACE, assert_refused, run

CASES = {
    # name: (file name, bytes, words the one line must hold)
    "oversized text chunk before the pixels": (
        "text.png",
        lambda: malformed.png(before=(malformed.oversized_text_chunk(),)),
        "metadata",
    ),
    "oversized text chunk after the pixels": (
        "late-text.png",
        lambda: malformed.png(after=(malformed.oversized_text_chunk(),)),
        "metadata",
    ),
    "garbage EXIF in a WebP": (
        "exif.webp",
        lambda: malformed.webp_with_exif(b"Exif\0\0garbage-not-tiff" + b"\0" * 20),
        "EXIF",
    ),
    "short garbage EXIF in a WebP": (
        "exif2.webp",
        lambda: malformed.webp_with_exif(b"junk"),
        "EXIF",
    ),
    "ICNS hiding a 400-MP PNG": (
        "icon.icns",
        lambda: malformed.icns_hiding(malformed.bomb_png()),
        "megapixels",
    ),
    "GIF whose frame grows to 400 MP": (
        "grow.gif",
        lambda: malformed.gif_growing_to(20_000),
        "megapixels",
    ),
}
HEADER_CASES = {
    "oversized text chunk before the pixels",
    "garbage EXIF in a WebP",
    "short garbage EXIF in a WebP",
    "GIF whose frame grows to 400 MP",
}
"""The cases found from the header alone: refused before any model loads, and by `inspect`."""


def _write(tmp_path, case: str):
    name, make, words = CASES[case]
    path = tmp_path / name
    path.write_bytes(make())
    return path, words


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Models `generate` tried to load: none, when a photo is refused."""
    calls: list[str] = []

    def refuse(model, device, dtype):
        calls.append(model)
        raise AssertionError("the model was loaded although a photo is broken")

    monkeypatch.setattr(generate_command, "load_pipeline", refuse)
    return calls


@pytest.mark.parametrize("case", CASES)
def test_the_loader_turns_every_decoder_error_into_one_line(case, tmp_path):
    path, words = _write(tmp_path, case)
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageLoadError, match=words) as raised:
            load_image(source, name=path.name)
        assert "\n" not in str(raised.value) and path.name in str(raised.value)


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_the_header_reader_refuses_what_the_header_shows(case, tmp_path):
    from facestudio.images import read_image_header

    path, words = _write(tmp_path, case)
    with pytest.raises(ImageLoadError, match=words):
        read_image_header(path)


def test_an_opened_image_with_garbage_exif_is_one_line(tmp_path):
    path, _ = _write(tmp_path, "garbage EXIF in a WebP")
    with Image.open(path) as image, pytest.raises(ImageLoadError, match="EXIF"):
        image_to_rgb_array(image, name="style image")


@pytest.mark.parametrize("case", CASES)
def test_faces_refuses_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    path, words = _write(tmp_path, case)
    out = tmp_path / "faces.json"
    assert_refused(run(capsys, "faces", path, "--json", out), words, path.name)
    assert not out.exists()


@pytest.mark.parametrize("case", CASES)
def test_generate_refuses_the_photo_before_the_model_loads(case, tmp_path, loads, capsys):
    path, words = _write(tmp_path, case)
    out = tmp_path / "out.png"
    for flag in ("--face", "--style"):
        args = ["generate", flag, path, "-o", out]
        if flag == "--style":
            args += ["--face", shared_file(FACE)]
        assert_refused(run(capsys, *args), words)
    assert loads == [] and not out.exists()


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_inspect_refuses_what_it_cannot_read_with_one_line(case, tmp_path, capsys):
    path, words = _write(tmp_path, case)
    assert_refused(run(capsys, "inspect", path), words)


@pytest.mark.parametrize("case", sorted(set(CASES) - HEADER_CASES))
def test_inspect_reports_damage_it_finds_past_the_header(case, tmp_path, capsys):
    path, words = _write(tmp_path, case)
    code, out, err = run(capsys, "inspect", path)
    assert code == 0 and "Traceback" not in err, err
    assert "pixel data: damaged" in out and words in out


def test_prepare_skips_every_broken_photo_and_keeps_the_good_one(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "good.jpg").write_bytes(shared_file(FACE).read_bytes())
    for number, (_, make, _) in enumerate(CASES.values()):  # a folder lists photos by suffix
        (photos / f"broken-{number}.png").write_bytes(make())
    code, _, err = run(capsys, "prepare", photos, "--out", tmp_path / "out", "--resolution", "64")
    assert code == 0 and "Traceback" not in err, err
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["kept"] == 1 and index["skipped"]["unreadable"] == len(CASES)


@pytest.fixture(scope="module")
def client():
    """The HTTP API around the bundled model, in-process."""
    from fastapi.testclient import TestClient

    from facestudio.app.server import create_app
    from facestudio.app.studio import Studio
    from tests.app.conftest import config

    with TestClient(create_app(config(), Studio.load("bundled"), ui=False)) as client:
        yield client


@pytest.mark.parametrize("case", CASES)
def test_the_server_answers_422_with_one_line(case, client):
    from tests.app.conftest import fast_fields

    name, make, words = CASES[case]
    face = ("face.jpg", shared_file(FACE).read_bytes(), "image/jpeg")
    broken = (name, make(), "application/octet-stream")
    for files in ([("person_0", broken)], [("person_0", face), ("style_image", broken)]):
        response = client.post("/v1/generations", files=files, data=fast_fields())
        detail = response.json().get("detail")
        assert response.status_code == 422, (response.status_code, detail)
        assert isinstance(detail, str) and "\n" not in detail and words in detail, detail
