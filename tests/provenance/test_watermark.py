"""The invisible watermark: embedded where large enough, survives JPEG q80 and a 0.75× resize."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facestudio.images import load_image
from facestudio.provenance import watermark
from tests.conftest import shared_file


def _photo(side: int) -> np.ndarray:
    image = Image.fromarray(load_image(shared_file("data/groups/couple.jpg")))
    return np.asarray(image.resize((side, side), Image.Resampling.LANCZOS))


def _jpeg_then_shrink(rgb: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=80)
    image = Image.open(buffer).convert("RGB")
    size = (round(image.width * 0.75), round(image.height * 0.75))
    return np.asarray(image.resize(size, Image.Resampling.BICUBIC))


def test_the_mark_survives_jpeg_80_and_a_three_quarter_resize():
    original = _photo(256)
    marked = watermark.embed(original)
    assert not np.array_equal(marked, original)
    assert np.abs(marked.astype(int) - original).mean() < 3  # invisible: a few levels at most
    reading = watermark.detect(_jpeg_then_shrink(marked))
    assert reading.found and reading.scale == 0.75
    assert not watermark.detect(_jpeg_then_shrink(original)).found


def test_small_images_are_left_alone_and_say_why():
    small = _photo(64)
    assert np.array_equal(watermark.embed(small), small)
    assert watermark.method_for(64, 64) is None
    assert watermark.method_for(watermark.MIN_WATERMARK_SIDE, 320) == watermark.METHOD
    reading = watermark.detect(small)
    assert not reading.checked and "too small" in reading.reason


def test_pipeline_images_large_enough_carry_the_mark(tiny_pipeline):
    out = tiny_pipeline(
        identities=[np.ones(128, np.float32)],
        width=256,
        height=256,
        num_inference_steps=1,
        seed=2,
    )
    assert out.metadata[0]["watermark"] == watermark.METHOD
    assert watermark.detect(np.asarray(out.images[0])).found
    small = tiny_pipeline(identities=[np.ones(128, np.float32)], num_inference_steps=1, seed=2)
    assert small.metadata[0]["watermark"] is None
