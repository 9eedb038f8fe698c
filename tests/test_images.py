"""Loading images: every odd or broken file gives an upright RGB array or a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facestudio.errors import ImageLoadError
from facestudio.images import ImageLoadConfig, load_image


def _gradient(mode: str = "RGB", size=(64, 48)) -> Image.Image:
    gradient = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
    return Image.fromarray(gradient.astype(np.uint8)).convert(mode)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("not an image at all"), "not an image format"),
    ],
)
def test_unusable_files_raise_one_line_errors(tmp_path, make, message):
    path = tmp_path / "photo.jpg"
    make(path)
    with pytest.raises(ImageLoadError, match=message) as error:
        load_image(path)
    assert "\n" not in str(error.value)


def test_truncated_jpeg_is_an_error(tmp_path):
    path = tmp_path / "cut.jpg"
    _gradient(size=(256, 256)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(path)


def test_tiny_image_is_an_error(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    with pytest.raises(ImageLoadError, match="1×1 pixels, too small"):
        load_image(path)


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (3000, 2000)).save(path)
    with pytest.raises(ImageLoadError, match="over the 5 MP limit"):
        load_image(path, ImageLoadConfig(max_pixels=5_000_000))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_mode_becomes_rgb_uint8(tmp_path, mode):
    source = _gradient().convert("L")
    if mode in ("I;16", "I", "F"):
        wide = np.asarray(source, dtype=np.float64) * 257  # the 16-bit range
        image = Image.fromarray(wide.astype(np.float32) if mode == "F" else wide.astype(np.uint16))
        image = image if mode in ("F", "I;16") else image.convert(mode)
    else:
        image = _gradient().convert(mode)
    suffix = ".tif" if mode in ("I", "F", "CMYK") else ".png"
    path = tmp_path / f"image{suffix}"
    image.save(path)
    array = load_image(path)
    assert array.dtype == np.uint8 and array.shape == (48, 64, 3)
    if mode in ("I;16", "I", "F"):
        # 16-bit values are scaled into 8 bits, not clipped to white.
        np.testing.assert_allclose(array[:, :, 0], np.asarray(source), atol=1)


def test_transparent_pixels_become_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (32, 32), (10, 20, 30, 0)).save(path)
    assert (load_image(path) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    stored = Image.new("RGB", (60, 40), (0, 0, 0))
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    stored.save(path, exif=exif)
    assert load_image(path).shape == (60, 40, 3)
