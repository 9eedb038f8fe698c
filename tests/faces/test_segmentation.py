"""The person segmenter (bundled MediaPipe model through LiteRT) and person masks split into
one region per face: on the real group photos, every region holds its own face and no other."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
from PIL import Image

from facestudio.errors import FaceStudioError, ModelLoadError
from facestudio.faces import Face
from facestudio.faces import segmentation as segmentation_module
from facestudio.faces.regions import (
    SegmentSplitConfig,
    draw_region_masks,
    faces_on_people,
    segmented_regions,
)
from facestudio.faces.segmentation import (
    MODEL_PATH,
    MODEL_SHA256,
    PersonSegmenter,
    default_segmenter,
)
from facestudio.images import load_image
from tests.conftest import shared_file


def _face(x0, y0, x1, y1) -> Face:
    landmarks = np.array([[(x0 + x1) / 2, (y0 + y1) / 2]] * 5, np.float32)
    return Face((x0, y0, x1, y1), 1.0, landmarks)


def _inside(mask: np.ndarray, point, image_size) -> bool:
    """Whether the mask pixel under `point` (image pixels) is set; the image is stretched to it."""
    height, width = mask.shape
    col = min(int(point[0] * width / image_size[0]), width - 1)
    row = min(int(point[1] * height / image_size[1]), height - 1)
    return bool(mask[row, col])


# -- the bundled model -------------------------------------------------------------------------


def test_the_shipped_model_is_mediapipes_file_with_its_notice():
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    notice = (MODEL_PATH.parent / "NOTICE.md").read_text()
    assert MODEL_SHA256 in notice and "Apache License, Version 2.0" in notice
    assert "mediapipe==0.10.14" in notice


def test_person_mask_is_at_image_size_person_on_portraits_none_on_a_blank(segmenter, manifest):
    portraits = [
        shared_file(f"data/{photos[0]}")
        for photos in list(manifest["sets"]["lfw"]["identities"].values())[:5]
    ]
    for path in portraits:
        pixels = load_image(path)
        mask = segmenter.person_mask(pixels)
        assert mask.shape == pixels.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        # LFW deep-funneled photos are face-centred: the centre is a person.
        centre = mask[100:150, 100:150]
        assert (centre >= 0.5).mean() > 0.9, path.name
    blank = segmenter.person_mask(load_image(shared_file("data/misc/white.png")))
    assert blank.max() < 0.5


def test_pil_and_array_inputs_give_the_same_mask(segmenter):
    pixels = load_image(shared_file("data/groups/couple.jpg"))
    from_array = segmenter.person_mask(pixels)
    np.testing.assert_array_equal(from_array, segmenter.person_mask(Image.fromarray(pixels)))


def test_missing_extra_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    with pytest.raises(FaceStudioError, match=r"pip install 'facestudio\[segment\]'") as error:
        PersonSegmenter()
    assert "\n" not in str(error.value)


def test_without_the_extra_there_is_no_default_segmenter(monkeypatch):
    monkeypatch.setattr(segmentation_module, "segmenter_available", lambda: False)
    default_segmenter.cache_clear()
    try:
        assert default_segmenter() is None
    finally:
        default_segmenter.cache_clear()


def test_bad_model_files_and_images_are_one_line_errors(segmenter, tmp_path):
    with pytest.raises(ModelLoadError, match="is missing"):
        PersonSegmenter(tmp_path / "none.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelLoadError, match="not a usable TFLite") as error:
        PersonSegmenter(junk)
    assert "\n" not in str(error.value)
    with pytest.raises(FaceStudioError, match=r"\(H, W, 3\) uint8 RGB"):
        segmenter.person_mask(np.zeros((20, 20), np.uint8))


# -- splitting a person mask between faces ---------------------------------------------------


def _two_people() -> tuple[np.ndarray, list[Face]]:
    """Two touching bodies, 100 px wide, under faces 40 px wide, on a 200×200 image."""
    mask = np.zeros((200, 200), np.float32)
    mask[20:200, 0:100] = 1.0  # left person
    mask[40:200, 100:200] = 0.9  # right person, head lower
    return mask, [_face(30, 20, 70, 70), _face(130, 40, 170, 90)]


def test_touching_people_are_split_between_them_and_background_is_nobodys():
    mask, faces = _two_people()
    mask[:20, :] = 0.0
    left, right = segmented_regions(mask, faces)
    assert not (left & right).any()
    assert left[150, 10:95].all() and right[150, 105:190].all()  # each body to its own face
    assert not (left | right)[:20, :].any()  # not a person: nobody's
    np.testing.assert_array_equal(left | right, mask >= 0.5)


def test_a_face_the_mask_misses_still_owns_its_box_and_no_other_face_does():
    mask = np.zeros((100, 100), np.float32)
    faces = [_face(10, 10, 40, 40), _face(35, 20, 65, 50)]  # overlapping boxes
    first, second = segmented_regions(mask, faces)
    assert first[25, 25] and second[35, 50]  # each centre in its own region
    assert not first[35, 50] and not second[25, 25]
    assert not (first & second).any()
    assert faces_on_people(mask, faces) == [False, False]


def test_pieces_cut_off_from_their_face_belong_to_nobody():
    mask, faces = _two_people()
    mask[190:200, 60:140] = 0.0
    mask[100:110, 0:200] = 0.0  # a gap across both bodies: the legs are cut off
    left, right = segmented_regions(mask, faces)
    assert not (left | right)[110:, :].any()
    assert left[60, 50] and right[80, 150]


def test_regions_at_a_coarse_size_keep_every_face():
    mask, faces = _two_people()
    faces.append(_face(96, 150, 99, 153))  # a tiny face on the boundary
    masks = segmented_regions(mask, faces, mask_size=(8, 6))
    assert masks.shape == (3, 6, 8)
    assert all(m.any() for m in masks)
    assert (masks.sum(axis=0) <= 1).all()


def test_drawing_tints_regions_and_dims_the_rest():
    mask, faces = _two_people()
    masks = segmented_regions(mask, faces)
    picture = np.full((200, 200, 3), 200, np.uint8)
    drawn = np.asarray(draw_region_masks(picture, masks[:, ::2, ::2]))
    assert drawn.shape == picture.shape
    assert drawn[5, 100].max() < 100  # outside every region: dimmed
    assert not np.array_equal(drawn[150, 50], drawn[150, 150])  # two colours


# -- the group photos --------------------------------------------------------------------------


@pytest.mark.slow
def test_on_every_group_photo_each_region_holds_its_own_face_and_no_other(
    segmenter, onnx_analyzer, manifest
):
    """Every face YuNet finds in each `multi_person` photo, at the photo's size and at a
    128×96 canvas; where the segmenter finds every face on a person, the regions also follow
    bodies (most are over twice their face box). 10 of the 16 photos are segmented."""
    segmented = 0
    for relative in manifest["multi_person"]:
        pixels = load_image(shared_file(f"data/{relative}"))
        faces = onnx_analyzer.analyze(pixels).faces
        person_mask = segmenter.person_mask(pixels)
        size = (pixels.shape[1], pixels.shape[0])
        for mask_size in (size, (128, 96)):
            masks = segmented_regions(person_mask, faces, mask_size)
            assert masks.shape == (len(faces), mask_size[1], mask_size[0])
            assert (masks.sum(axis=0) <= 1).all(), relative
            for i, face in enumerate(faces):
                others = [f for j, f in enumerate(faces) if j != i]
                assert _inside(masks[i], face.center, size), (relative, i)
                assert not any(_inside(masks[i], f.center, size) for f in others), (relative, i)
        masks = segmented_regions(person_mask, faces)
        for i, face in enumerate(faces):
            for point in face.landmarks:  # those in its own box and in no other face's
                mine = _in_box(point, face.box)
                theirs = any(_in_box(point, f.box) for j, f in enumerate(faces) if j != i)
                if mine and not theirs:
                    assert _inside(masks[i], point, size), (relative, i)
                    assert not any(
                        _inside(masks[j], point, size) for j in range(len(faces)) if j != i
                    )
        if faces and all(faces_on_people(person_mask, faces)):
            segmented += 1
            bodies = [m.sum() > 2 * f.area for f, m in zip(faces, masks, strict=True)]
            assert np.mean(bodies) > 0.5, relative  # a face at the frame or in front is less
    assert segmented >= 8  # of 16 photos: the segmenter does find people in group photos


def _in_box(point, box) -> bool:
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


def test_split_config_is_documented_defaults():
    config = SegmentSplitConfig()
    assert (config.threshold, config.below, config.on_person) == (0.5, 3.0, 0.5)
