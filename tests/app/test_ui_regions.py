"""The page's person-region preview, called as the page's client calls it (a real server on
loopback, the bundled model): with several people and a style image, the regions the pipeline
will use are drawn in the output's shape before generating, and said in words."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import encode, file_data, page_call, running_server, upload_to_page

pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def server(studio):
    with running_server(studio) as (url, _app):
        yield url


@pytest.fixture(scope="module")
def uploaded(server, photo, astronaut) -> dict[str, dict]:
    pair = encode(np.hstack([astronaut, astronaut[:, ::-1]]), "JPEG")  # two faces
    files = {"me": photo, "you": photo, "pair": pair}
    return {
        name: file_data(upload_to_page(server, f"{name}.jpg", data)[1][0])
        for name, data in files.items()
    }


def test_two_people_and_a_group_style_show_their_regions_before_generating(server, uploaded):
    event, data = page_call(
        server,
        "on_regions",
        person_0=[uploaded["me"]],
        person_1=[uploaded["you"]],
        style_image=uploaded["pair"],
    )
    assert event == "complete", data
    picture, note = data
    assert Image.open(picture["path"]).size == (512, 256)  # the output's 128×64 shape
    assert note.startswith("2 people, left to right, from the style image: regions ")
    assert "cropped around its faces" in note


def test_one_person_needs_no_regions(server, uploaded):
    event, data = page_call(
        server, "on_regions", person_0=[uploaded["me"]], style_image=uploaded["pair"]
    )
    assert event == "complete" and data == [None, ""]


def test_without_an_image_to_place_them_from_people_get_equal_strips(server, uploaded):
    event, data = page_call(
        server, "on_regions", person_0=[uploaded["me"]], person_1=[uploaded["you"]]
    )
    assert event == "complete" and data[0] is None and "equal vertical strips" in data[1]
