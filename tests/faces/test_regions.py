"""Person regions and their masks: exclusive, at any resolution, never empty when avoidable."""

from __future__ import annotations

import numpy as np
import pytest

from facestudio.errors import FaceStudioError
from facestudio.faces import Face, PersonRegionConfig, check_boxes, person_region, region_masks


def _face(x0, y0, x1, y1) -> Face:
    return Face((x0, y0, x1, y1), 1.0, np.zeros((5, 2), np.float32))


def test_person_region_expands_the_face_as_documented_and_clips():
    config = PersonRegionConfig(width=3.0, above=0.75, below=4.0)
    region = person_region(_face(100, 100, 140, 150), (1000, 1000), config)
    assert region == (60.0, 62.5, 180.0, 350.0)
    clipped = person_region(_face(0, 0, 40, 50), (100, 120), config)
    assert clipped == (0.0, 0.0, 80.0, 120.0)


@pytest.mark.parametrize("mask_size", [(64, 64), (32, 16), (8, 8), (7, 3)])
def test_masks_are_exclusive_and_follow_boxes_at_any_resolution(mask_size):
    boxes = [(0, 0, 60, 100), (40, 0, 100, 100)]  # overlapping in 40..60
    masks = region_masks(boxes, (100, 100), mask_size)
    assert masks.shape == (2, mask_size[1], mask_size[0])
    assert not (masks[0] & masks[1]).any()
    xs = (np.arange(mask_size[0]) + 0.5) * 100 / mask_size[0]
    # Left of the overlap is person 0, right of it person 1, the overlap split at the middle.
    assert masks[0][:, xs < 40].all() and masks[1][:, xs >= 60].all()
    assert masks[0][:, (xs >= 40) & (xs < 50)].all() and masks[1][:, (xs > 50) & (xs < 60)].all()


def test_non_square_canvas_maps_boxes_by_each_axis():
    masks = region_masks([(0, 0, 200, 50)], (400, 100), (8, 4))
    expected = np.zeros((4, 8), bool)
    expected[:2, :4] = True
    np.testing.assert_array_equal(masks[0], expected)


def test_a_tiny_region_keeps_the_pixel_under_its_anchor():
    masks = region_masks([(0, 0, 100, 100), (48, 48, 52, 52)], (100, 100), (4, 4))
    assert masks[1].sum() == 1 and masks[1][2, 2]
    assert not (masks[0] & masks[1]).any()


def test_pixels_outside_every_region_belong_to_nobody():
    masks = region_masks([(0, 0, 50, 50)], (100, 100), (4, 4))
    assert masks[0].sum() == 4 and not masks[0][2:, :].any()


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((10, 10, 5, 20), "is empty"),
        ((-5, 0, 20, 20), "outside the 64×64 canvas"),
        ((0, 0, 70, 20), "outside"),
        ((1, 2, 3), "has 3 numbers"),
    ],
)
def test_bad_user_boxes_are_refused(box, message):
    with pytest.raises(FaceStudioError, match=message):
        check_boxes([box], (64, 64))
