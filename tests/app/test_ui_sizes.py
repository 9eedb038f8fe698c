"""The page's size control and messages, called as the page's client calls them (a real server
on loopback, the bundled model): it offers only the size the model makes for the people given,
two people make two portraits side by side, and its messages name its widgets."""

from __future__ import annotations

import io
import re
import urllib.request

import pytest
from PIL import Image

from tests.app import conftest
from tests.app.conftest import file_data, get_json, page_call, running_server, upload_to_page

pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(autouse=True)
def _labels(monkeypatch):
    """The page's labels of the widgets these tests fill, beside the shared ones."""
    monkeypatch.setitem(conftest.PAGE_LABELS, "size", "Size")
    monkeypatch.setitem(conftest.PAGE_LABELS, "prompt", "Prompt")


@pytest.fixture(scope="module")
def server(studio):
    with running_server(studio) as (url, _app):
        yield url


@pytest.fixture(scope="module")
def two_photos(server, photo) -> list[list[dict]]:
    return [[file_data(upload_to_page(server, f"{n}.jpg", photo)[1][0])] for n in ("me", "you")]


def size_choices(server) -> list:
    config = get_json(f"{server}/config")
    (size,) = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "size"]
    return size["props"]["choices"]


def test_the_size_control_offers_only_the_size_the_model_makes_for_the_people(server, two_photos):
    assert size_choices(server) == [["64×64 (follows the people)", ""]]
    event, data = page_call(server, "on_people", person_0=two_photos[0], person_1=two_photos[1])
    assert event == "complete" and data[0]["choices"] == [["128×64 (follows the people)", ""]]
    assert "one 64×64 tile per person, side by side" in data[0]["info"]


def test_two_people_on_the_page_make_two_portraits_side_by_side(server, two_photos):
    event, data = page_call(
        server,
        "on_generate",
        person_0=two_photos[0],
        person_1=two_photos[1],
        num_inference_steps=2,
        seed="3",
    )
    assert event == "complete" and data[0].startswith("Done: 1 image"), data
    (url,) = re.findall(r'<img src="([^"]+)"', data[1])
    with urllib.request.urlopen(server + url) as served:
        assert Image.open(io.BytesIO(served.read())).size == (128, 64)


def test_a_size_the_page_does_not_offer_is_refused(server, two_photos):
    event, data = page_call(
        server, "on_generate", person_0=two_photos[0], size="256x256", num_inference_steps=2
    )
    assert event == "error" and "not in the list of choices" in str(data)


def test_page_messages_name_the_pages_widgets(server, two_photos):
    event, data = page_call(server, "on_generate", person_0=two_photos[0], prompt="a cat")
    assert event == "complete" and "give a style image instead (the Style image)" in data[0]
    assert "`" not in data[0] and "--" not in data[0]
