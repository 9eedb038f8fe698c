"""`regions="auto"` with the person segmenter: segmented regions where it finds the people,
face-box regions otherwise, and the metadata saying which and why."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facestudio.faces.segmentation import MODEL_NAME
from facestudio.images import load_image
from facestudio.pipeline.layout import auto_layout, preview_regions, resolve_layout
from tests.conftest import shared_file


class _NoPeople:
    """A segmenter that finds nobody (as the real one does on some crowded photos)."""

    name = "no-people"

    def person_mask(self, image):
        return np.zeros(np.asarray(image).shape[:2], np.float32)


def _analyzer(tiny_pipeline):
    return lambda: tiny_pipeline.face_analyzer


@pytest.mark.parametrize("photo", ["couple.jpg", "two_people.jpg", "kit_with_rose.jpg"])
def test_two_people_get_segmented_regions_each_holding_its_face(tiny_pipeline, segmenter, photo):
    picture = load_image(shared_file(f"data/groups/{photo}"))
    layout = auto_layout(2, 128, 96, picture, _analyzer(tiny_pipeline), lambda: segmenter)
    assert layout.source == "segmented" and layout.boxes is None
    faces = sorted(
        tiny_pipeline.face_analyzer.analyze(picture).faces[:2], key=lambda f: f.center[0]
    )
    described = layout.describe()
    assert {k: described[k] for k in ("source", "masks", "segmenter")} == {
        "source": "segmented",
        "masks": 2,
        "segmenter": MODEL_NAME,
    }
    scale = np.array([128, 96, 128, 96]) / np.array([picture.shape[1], picture.shape[0]] * 2)
    np.testing.assert_allclose(
        described["faces"], [np.array(f.box) * scale for f in faces], atol=0.06
    )  # where the people are, in canvas pixels, left to right
    for width, height in ((128, 96), (16, 12), (4, 3)):  # canvas and U-Net levels
        masks = layout.masks_at(width, height).numpy()
        assert masks.shape == (2, height, width) and not (masks[0] & masks[1]).any()
        assert masks[0].any() and masks[1].any()
    masks = layout.masks_at(128, 96).numpy()
    for i, face in enumerate(faces):
        col = int(face.center[0] * 128 / picture.shape[1])
        row = int(face.center[1] * 96 / picture.shape[0])
        assert masks[i, row, col] and not masks[1 - i, row, col]
    assert masks.sum() < 0.95 * 128 * 96  # the background is nobody's


def test_without_the_segmenter_auto_is_face_boxes_and_says_why(tiny_pipeline):
    picture = load_image(shared_file("data/groups/couple.jpg"))
    layout = auto_layout(2, 128, 96, picture, _analyzer(tiny_pipeline), lambda: None)
    described = layout.describe()
    assert described["source"] == "detected" and len(described["boxes"]) == 2
    assert described["segmenter"] == "not installed (pip install 'facestudio[segment]')"


def test_when_the_segmenter_finds_nobody_auto_falls_back_to_face_boxes(tiny_pipeline):
    picture = load_image(shared_file("data/groups/couple.jpg"))
    layout = auto_layout(2, 128, 96, picture, _analyzer(tiny_pipeline), _NoPeople)
    described = layout.describe()
    assert described["source"] == "detected"
    assert described["segmenter"] == "no-people found no person at face(s) [0, 1] (left to right)"
    # Exactly the regions of face boxes alone.
    plain = auto_layout(2, 128, 96, picture, _analyzer(tiny_pipeline), lambda: None)
    assert layout.boxes == plain.boxes and layout.anchors == plain.anchors


@pytest.mark.slow
def test_a_crowd_the_real_segmenter_misses_falls_back(tiny_pipeline, segmenter):
    """Solvay 1927: 29 small faces in rows; the 256-px model sees no person there."""
    picture = load_image(shared_file("data/groups/solvay1927.jpg"))
    layout = auto_layout(2, 128, 64, picture, _analyzer(tiny_pipeline), lambda: segmenter)
    assert layout.source == "detected"
    assert layout.details["segmenter"].startswith(f"{MODEL_NAME} found no person at face(s)")


def test_fewer_faces_than_people_is_an_even_split_without_segmenting(tiny_pipeline):
    def refuse():
        raise AssertionError("the segmenter must not run without faces to split by")

    blank = np.full((64, 64, 3), 255, np.uint8)
    layout = resolve_layout("auto", 2, 64, 64, blank, _analyzer(tiny_pipeline), refuse)
    assert layout.source == "even split"
    assert resolve_layout("auto", 1, 64, 64, blank, _analyzer(tiny_pipeline), refuse) is None


def test_the_pipeline_generates_with_segmented_regions_and_records_them(tiny_pipeline, segmenter):
    faces = list(np.random.default_rng(0).normal(size=(2, 128)).astype(np.float32))
    style = Image.open(shared_file("data/groups/two_people.jpg")).convert("RGB")
    kwargs = dict(identities=faces, style_image=style, num_inference_steps=2, seed=3)
    out = tiny_pipeline(**kwargs, width=128, height=64)
    regions = out.metadata[0]["regions"]
    assert regions["source"] == "segmented" and regions["masks"] == 2
    assert out.metadata[0]["style_crop"] is not None  # laid out in the auto-cropped frame


def test_preview_draws_the_regions_the_pipeline_would_use(tiny_pipeline, segmenter):
    picture = load_image(shared_file("data/groups/kit_with_rose.jpg"))
    drawn, layout = preview_regions(picture, 2, _analyzer(tiny_pipeline), lambda: segmenter)
    assert drawn.size == (picture.shape[1], picture.shape[0])
    assert layout.source == "segmented" and (layout.width, layout.height) == drawn.size
    assert not np.array_equal(np.asarray(drawn), picture)
