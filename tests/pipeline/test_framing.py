"""Auto-crop of the style image around its people: the frame keeps the output's shape, holds
every face with its margin (or as much margin as the photo has), never stretches or cuts a
face, and the pipeline lays the people out in the cropped frame."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facestudio.pipeline.framing import MARGIN, crop, frame_people, framing_box
from tests.conftest import shared_file

FACES = [(100.0, 100.0, 150.0, 160.0), (300.0, 120.0, 350.0, 180.0)]


def _holds(box, inner) -> bool:
    return box[0] <= inner[0] and box[1] <= inner[1] and box[2] >= inner[2] and box[3] >= inner[3]


def _grown(face, margin=MARGIN):
    w, h = face[2] - face[0], face[3] - face[1]
    return (face[0] - margin * w, face[1] - margin * h, face[2] + margin * w, face[3] + margin * h)


@pytest.mark.parametrize("aspect", [2.0, 1.0, 0.75, 128 / 96])
def test_the_frame_has_the_output_shape_and_holds_every_face_with_margin(aspect):
    box = framing_box(FACES, (1000, 800), aspect)
    width, height = box[2] - box[0], box[3] - box[1]
    assert abs(width / height - aspect) < 2 / height  # up to rounding to whole pixels
    assert all(_holds(box, _grown(face)) for face in FACES)
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= 1000 and box[3] <= 800
    loose_w = max(_grown(f)[2] for f in FACES) - min(_grown(f)[0] for f in FACES)
    loose_h = max(_grown(f)[3] for f in FACES) - min(_grown(f)[1] for f in FACES)
    assert width <= max(loose_w, loose_h * aspect) + 1  # as tight as the shape allows


def test_faces_are_much_larger_in_the_frame_than_in_the_photo():
    box = framing_box(FACES, (2000, 1500), 2.0)
    assert (box[2] - box[0]) < 2000 / 4


def test_the_margin_gives_way_before_anything_is_padded():
    faces = [(10.0, 150.0, 110.0, 250.0), (290.0, 150.0, 390.0, 250.0)]
    box = framing_box(faces, (400, 400), 2.0)
    assert box == (0, 100, 400, 300)  # the whole width; faces whole, no padding
    assert all(_holds(box, face) for face in faces)


def test_a_photo_too_narrow_for_the_shape_is_padded_with_its_edges():
    picture = np.random.default_rng(0).integers(0, 255, (600, 300, 3), dtype=np.uint8)
    faces = [(100.0, 100.0, 200.0, 200.0), (100.0, 400.0, 200.0, 500.0)]
    box = framing_box(faces, (300, 600), 2.0)
    assert all(_holds(box, face) for face in faces)
    assert box[0] < 0 and box[2] > 300  # reaches past both sides
    framed = np.asarray(crop(picture, box))
    assert framed.shape[:2] == (box[3] - box[1], box[2] - box[0])
    inside = -box[0]
    np.testing.assert_array_equal(
        framed[:, inside : inside + 300], picture[box[1] : box[3]]
    )  # the photo itself is neither moved nor stretched
    np.testing.assert_array_equal(framed[:, 0], picture[box[1] : box[3], 0])  # edge repeated


def test_the_pipeline_lays_people_out_in_the_cropped_frame(tiny_pipeline):
    """Auto-crop equals cropping by hand and giving the crop as the style image."""
    style = Image.open(shared_file("data/groups/bbt2.jpg")).convert("RGB")
    faces = np.random.default_rng(0).normal(size=(2, 128)).astype(np.float32)
    kwargs = dict(identities=list(faces), num_inference_steps=2, seed=3, width=128, height=64)
    auto = tiny_pipeline(style_image=style, **kwargs)
    framing = frame_people(style, 128, 64, 2, lambda: tiny_pipeline.face_analyzer)
    by_hand = tiny_pipeline(style_image=framing.image, auto_crop=False, **kwargs)
    as_is = tiny_pipeline(style_image=style, auto_crop=False, **kwargs)
    assert auto.metadata[0]["style_crop"] == {"box": list(framing.box), "faces": 2}
    assert as_is.metadata[0]["style_crop"] is None
    np.testing.assert_array_equal(np.asarray(auto.images[0]), np.asarray(by_hand.images[0]))
    assert auto.metadata[0]["regions"] == by_hand.metadata[0]["regions"]
    assert auto.metadata[0]["regions"] != as_is.metadata[0]["regions"]
    assert auto.metadata[0]["regions"]["source"] == "segmented"


def test_no_crop_for_one_person_or_regions_given(tiny_pipeline):
    style = Image.open(shared_file("data/groups/bbt2.jpg")).convert("RGB")
    faces = list(np.random.default_rng(0).normal(size=(2, 128)).astype(np.float32))
    kwargs = dict(style_image=style, num_inference_steps=1, seed=3, width=128, height=64)
    one = tiny_pipeline(identities=faces[:1], **kwargs)
    one_off = tiny_pipeline(identities=faces[:1], auto_crop=False, **kwargs)
    assert one.metadata[0]["style_crop"] is None
    np.testing.assert_array_equal(np.asarray(one.images[0]), np.asarray(one_off.images[0]))
    boxes = [(0, 0, 64, 64), (64, 0, 128, 64)]
    given = tiny_pipeline(identities=faces, regions=boxes, **kwargs)
    assert given.metadata[0]["style_crop"] is None
