"""The label and settings: names only, attached so that a plain PIL save writes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facestudio.provenance.metadata import (
    DESCRIPTION,
    label_image,
    names_only,
    png_text,
    read_settings,
)


def test_paths_lose_their_folders_everywhere():
    value = {
        "warnings": [
            "'/home/ann/my photos/me.jpg' has 2 faces; using face 0",
            "C:\\Users\\ann\\a.png and ~/b.jpg",
        ],
        "people": [{"sources": [{"photo": "/tmp/x/y.png"}]}],
        "prompt": "a cat on a/b test",  # not a path: no leading root
        "seed": 3,
    }
    clean = names_only(value)
    assert clean["warnings"] == ["'me.jpg' has 2 faces; using face 0", "a.png and b.jpg"]
    assert clean["people"][0]["sources"][0]["photo"] == "y.png"
    assert clean["prompt"] == "a cat on a/b test" and clean["seed"] == 3


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_a_plain_pil_save_of_a_labelled_image_writes_the_label(tmp_path, suffix):
    image = label_image(Image.new("RGB", (32, 32), "red"), {"generated": True, "seed": 9})
    image.save(tmp_path / f"x{suffix}")
    image.save(tmp_path / f"y{suffix}", quality=90)  # other options keep the label
    for name in ("x", "y"):
        saved = Image.open(tmp_path / f"{name}{suffix}")
        assert read_settings(saved) == {"generated": True, "seed": 9}
        if suffix == ".png":
            assert saved.info["Description"] == DESCRIPTION


def test_an_unlabelled_image_has_no_settings(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert read_settings(Image.open(tmp_path / "plain.png")) is None


def test_pipeline_outputs_are_labelled_when_saved_plainly(tiny_pipeline, tmp_path):
    out = tiny_pipeline(identities=[np.ones(128, np.float32)], num_inference_steps=2, seed=4)
    out.images[0].save(tmp_path / "x.png")
    saved = Image.open(tmp_path / "x.png")
    assert "generated" in saved.info["Description"].lower()
    settings = json.loads(saved.info["facestudio"])
    assert settings == json.loads(png_text(out.metadata[0])["facestudio"])
    assert settings["generated"] is True and settings["seed"] == 4


def test_saving_with_other_settings_writes_those_settings(tmp_path):
    from facestudio.provenance.save import save_image

    image = label_image(Image.new("RGB", (16, 16)), {"generated": True, "seed": 1})
    save_image(image, tmp_path / "x.png", {"generated": True, "seed": 2})
    assert read_settings(Image.open(tmp_path / "x.png"))["seed"] == 2
    assert read_settings(image)["seed"] == 1  # the caller's image is not changed
