"""training/captions.py: attributes measured on portraits, and captions in many phrasings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestudio.training import captions
from facestudio.training.captions import Attributes, caption, hue_name, measure, phrases
from facestudio.training.stylize import STYLES

SIZE = 128
BOX = (40.0, 36.0, 88.0, 92.0)
FRONTAL = np.array([[54, 58], [74, 58], [64, 72], [56, 82], [72, 82]], np.float64)


def portrait(background=(120, 120, 120), face=(200, 150, 120), seed=0) -> np.ndarray:
    """A flat background, a skin-coloured face box and a little noise (so hues are defined)."""
    rng = np.random.default_rng(seed)
    image = np.empty((SIZE, SIZE, 3), np.float64)
    image[:] = background
    x0, y0, x1, y1 = (int(v) for v in BOX)
    image[y0:y1, x0:x1] = face
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_plain_grey_background_colour_photo_has_no_special_attributes():
    found = measure(portrait(), BOX, FRONTAL)
    assert found == Attributes(medium="photo", tone="colour")


def test_tone_black_and_white_and_sepia_follow_the_pixels():
    grey = cv2.cvtColor(cv2.cvtColor(portrait(), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert measure(grey, BOX, FRONTAL).tone == "black and white"
    sepia = STYLES["sepia"](portrait(), np.random.default_rng(0), portrait())
    assert measure(sepia, BOX, FRONTAL).tone == "sepia"
    assert measure(sepia, BOX, FRONTAL).tint is None  # a tint is only named on colour images


@pytest.mark.parametrize(
    ("colour", "name"),
    [((200, 30, 30), "red"), ((30, 60, 200), "blue"), ((40, 170, 40), "green")],
)
def test_background_colour_and_a_strong_cast_are_named(colour, name):
    found = measure(portrait(background=colour, face=colour), BOX, FRONTAL)
    assert found.background_colour == name
    assert found.tint == name


def test_background_brightness_is_measured_beside_the_face_not_on_it():
    dark = measure(portrait(background=(15, 15, 15), face=(240, 240, 240)), BOX, FRONTAL)
    light = measure(portrait(background=(235, 235, 235), face=(20, 20, 20)), BOX, FRONTAL)
    assert (dark.background_light, light.background_light) == ("dark", "light")


def test_pose_from_the_nose_against_the_eyes():
    def pose(nose):
        points = FRONTAL.copy()
        points[2] = nose
        found = measure(portrait(), BOX, points)
        return found.yaw, found.pitch

    assert pose((64, 72)) == (None, None)
    assert pose((58, 72)) == ("left", None)  # nose towards the image's left edge
    assert pose((70, 72)) == ("right", None)
    assert pose((64, 68)) == (None, "up")  # nose close under the eyes: head tilted back
    assert pose((64, 78)) == (None, "down")


def test_lighting_side_is_the_brighter_half_of_the_face():
    image = portrait()
    x0, y0, x1, y1 = (int(v) for v in BOX)
    middle = (x0 + x1) // 2
    lit_left = image.copy()
    lit_left[y0:y1, x0:middle] = 230
    lit_left[y0:y1, middle:x1] = 90
    assert measure(lit_left, BOX, FRONTAL).lighting == "left"
    assert measure(lit_left[:, ::-1].copy(), BOX, FRONTAL).lighting == "right"


def test_a_faceless_sample_gets_no_pose_or_lighting():
    found = measure(portrait(), (0, 0, 0, 0), np.zeros((5, 2)))
    assert (found.yaw, found.pitch, found.lighting) == (None, None, None)


def test_the_medium_is_the_stylisation_applied():
    assert measure(portrait(), BOX, FRONTAL, style="pencil").medium == "pencil sketch"
    assert measure(portrait(), BOX, FRONTAL, style="painted").medium == "painting"
    assert measure(portrait(), BOX, FRONTAL, style="sepia").medium == "photo"
    assert set(captions.MEDIUM_OF_STYLE) <= set(STYLES)


def test_hue_names_wrap_around_red():
    assert [hue_name(h) for h in (0, 10, 30, 55, 120, 180, 220, 275, 310, 350)] == [
        "red", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "red",
    ]  # fmt: skip


ATTRIBUTES = Attributes(
    medium="cartoon",
    tone="colour",
    tint="blue",
    background_light="dark",
    background_colour="blue",
    yaw="left",
    pitch="down",
    lighting="right",
)


def test_captions_mention_each_attribute_in_a_training_phrasing():
    rng = np.random.default_rng(0)
    for _ in range(50):
        text = caption(ATTRIBUTES, rng, mention=1.0)
        for attribute, value in ATTRIBUTES.values():
            if (attribute, value) == ("tone", "colour"):
                continue  # the default tone is named only half as often
            assert any(p in text for p in phrases(attribute, value)), (attribute, text)


def test_captions_vary_and_are_reproducible():
    texts = [caption(ATTRIBUTES, np.random.default_rng(seed)) for seed in range(40)]
    assert len(set(texts)) > 30
    assert texts == [caption(ATTRIBUTES, np.random.default_rng(seed)) for seed in range(40)]
    assert all(texts)
    assert caption(Attributes(), np.random.default_rng(0), mention=0.0)  # never empty


def test_unseen_phrasings_never_occur_in_training_captions():
    rng = np.random.default_rng(1)
    training = [caption(ATTRIBUTES, rng, mention=1.0) for _ in range(300)]
    for attribute, value in captions.vocabulary():
        seen, unseen = set(phrases(attribute, value)), set(phrases(attribute, value, True))
        assert unseen and not seen & unseen
        for phrase in unseen:
            assert all(phrase not in text for text in training)
    new_words = {w for v in captions.HUE_SYNONYMS.values() for w in v.split()}
    assert not new_words & captions.training_words()  # unseen colour words, not just orders


def test_the_vocabulary_leaves_out_the_defaults_and_covers_every_measured_attribute():
    pairs = captions.vocabulary()
    assert ("medium", "photo") not in pairs and ("tone", "colour") not in pairs
    assert {a for a, _ in pairs} == set(Attributes().to_dict())
    assert Attributes.from_dict(ATTRIBUTES.to_dict()) == ATTRIBUTES
