"""The style-taken measure: closer in look to the style image than the unstylised output."""

from __future__ import annotations

import numpy as np

from facestudio.evaluation.style_carry import style_features, styles_taken
from facestudio.training.stylize import STYLES


def _photo(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=(1, 1, 3))
    image = base + rng.normal(0, 25, size=(64, 64, 3))
    image[16:48, 20:44] += 40  # a face-like lighter block
    return np.clip(image, 0, 255).astype(np.uint8)


def _grey(image):
    return np.repeat(image.mean(-1, keepdims=True), 3, -1).astype(np.uint8)


def test_a_greyscale_output_took_a_greyscale_style_and_a_colour_one_did_not():
    photos = [_photo(s) for s in range(6)]
    styles = [_grey(_photo(s + 10)) for s in range(6)]
    grey_outputs = [_grey(p) for p in photos]
    assert all(styles_taken(grey_outputs, photos, styles))
    assert not any(styles_taken(photos, grey_outputs, styles))


def test_features_see_each_training_stylisation():
    photo = _photo(0)
    plain = style_features(photo)
    for index in range(len(STYLES)):
        styled = STYLES[list(STYLES)[index]](photo, np.random.default_rng(0), _photo(5))
        assert not np.allclose(style_features(styled), plain, rtol=0.02)
