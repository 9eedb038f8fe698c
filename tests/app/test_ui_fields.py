"""The page's widgets become the API's form fields: α goes with a prompt and a style image only
(a prompt alone is α 0, and without a prompt α means nothing)."""

from __future__ import annotations

import pytest

from facestudio.app import ui
from facestudio.app.uploads import UploadFolder
from tests.conftest import shared_file

FACE = "data/deepface/id04/img16.jpg"


@pytest.fixture
def uploads(tmp_path) -> UploadFolder:
    folder = UploadFolder.create(max_bytes=2**25, ttl_s=600, parent=tmp_path)
    (folder.path / "me.jpg").write_bytes(shared_file(FACE).read_bytes())
    return folder


@pytest.mark.parametrize(
    ("prompt", "style", "alpha"),
    [("a pencil sketch", True, "0.3"), ("a pencil sketch", False, None), ("", True, None)],
    ids=["prompt and style", "prompt only", "style only"],
)
def test_alpha_is_sent_only_where_it_weighs_two_branches(uploads, prompt, style, alpha):
    photo = str(uploads.path / "me.jpg")
    values = {"person_0": [photo], "prompt": prompt, "alpha": 0.3}
    if style:
        values["style_image"] = photo
    widgets = {name: name for name in values}  # the widgets stand for their values here
    fields, files = ui._fields(widgets, values, uploads)
    assert fields.get("alpha") == alpha
    assert ("prompt" in fields) == bool(prompt) and len(files["person_0"]) == 1
