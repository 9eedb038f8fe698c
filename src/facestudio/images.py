"""Loading user images safely: one RGB uint8 array, as a person sees the photo, or a clear error.

This module is the one place that hands a user's image to Pillow: files, bytes, uploads and
opened images (`load_image`, `image_to_rgb_array`), and headers without pixels
(`read_image_header`, `check_image_file`). Every call into Pillow runs inside
`decoder_errors`, which turns the whole family of decoder errors (`ValueError` from an
oversized text chunk, `SyntaxError` from a garbage EXIF block, `DecompressionBombError` from
an icon that grows while it loads, ...) into one `ImageLoadError` line naming the image.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facestudio.errors import ImageLoadError
from facestudio.files import kind_of
from facestudio.structured_files import printable, quote


@dataclass(frozen=True)
class ImageLoadConfig:
    """Limits for images read from disk.

    `max_pixels` guards against decompression bombs (a small file that decodes to gigabytes);
    it is checked from the header, before any pixel is decoded. It also bounds the bytes of a
    file that are read at all (`max_file_bytes`). Only regular files are read.
    """

    max_pixels: int = 64_000_000
    min_side: int = 20


def load_image(
    source: str | os.PathLike | bytes,
    config: ImageLoadConfig | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Read an image file (or its bytes) as an (H, W, 3) uint8 RGB array, upright as its EXIF
    orientation says.

    Grayscale, palette, 16/32-bit, float, RGBA (composited on white) and CMYK images are
    converted. Raises `ImageLoadError` with a one-line reason for anything unusable.
    """
    config = config or ImageLoadConfig()
    opener, name = _opener(source, config, name)
    with opener:
        return _decode(opener, name, config)


def max_file_bytes(config: ImageLoadConfig) -> int:
    """The largest image file read: 4 bytes per allowed pixel (256 MB at the default 64 MP),
    room for an uncompressed RGBA image at the pixel limit. Checked from the file's size (or a
    tar member's header) before a byte is read."""
    return 4 * config.max_pixels


def open_image_file(
    path: str | os.PathLike, config: ImageLoadConfig | None = None, name: str | None = None
) -> BinaryIO:
    """`path` opened for reading if it is a non-empty regular file within `max_file_bytes`.

    A FIFO, device, socket or folder is refused by what it is, before it is opened (opening
    some devices acts on them, and reading a FIFO or /dev/zero never ends); the kind is checked
    again on the open file, which is opened non-blocking so that a swapped-in FIFO cannot hang.
    """
    config = config or ImageLoadConfig()
    name = name or str(path)
    try:
        _check_image_file(os.stat(path).st_mode, 1, name, config)
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(f"cannot read {quote(name)}: no such file") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read {quote(name)}: {exc.strerror or exc}") from None
    try:
        state = os.fstat(handle)
        _check_image_file(state.st_mode, state.st_size, name, config)
        return os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise


def check_image_file(
    path: str | os.PathLike, config: ImageLoadConfig | None = None, name: str | None = None
) -> None:
    """Raise now, before slow work (models loading), the error `load_image` would raise for
    `path` from its kind, size or header (`read_image_header`)."""
    read_image_header(path, config, name)


def read_image_file(
    path: str | os.PathLike, config: ImageLoadConfig | None = None, name: str | None = None
) -> bytes:
    """The bytes of an image file, with the checks of `open_image_file`."""
    config = config or ImageLoadConfig()
    name = name or str(path)
    limit = max_file_bytes(config)
    with open_image_file(path, config, name) as file:
        size = os.fstat(file.fileno()).st_size
        data = file.read(size + 1)  # sized by the file: no limit-sized buffer per call
        if len(data) > size:  # it grew since: read on, up to the limit
            data += file.read(limit + 1 - len(data))
    _check_image_file(stat.S_IFREG, len(data), name, config)  # it may have changed meanwhile
    return data


def _check_image_file(mode: int, size: int, name: str, config: ImageLoadConfig) -> None:
    if not stat.S_ISREG(mode):
        raise ImageLoadError(f"cannot read {quote(name)}: it is {kind_of(mode)}, not an image file")
    if size == 0:
        raise ImageLoadError(f"cannot read {quote(name)}: the file is empty (0 bytes)")
    if size > max_file_bytes(config):
        raise ImageLoadError(
            f"cannot read {quote(name)}: the file is {size / 1e6:.0f} MB, over the "
            f"{max_file_bytes(config) / 1e6:.0f} MB limit for one image; downscale or "
            "re-encode it"
        )


DECODER_ERRORS = (
    OSError,  # UnidentifiedImageError, truncated data, a decoder's own error
    ValueError,  # an oversized text chunk, a bad mode or size
    SyntaxError,  # a malformed header or EXIF block
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    RecursionError,  # a chain of nested IFDs
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # raised as an error inside `decoder_errors`
)
"""What Pillow raises on malformed input. Pillow's own `Image.open` treats several of these as
"not this format"; a plugin can raise any of them while it reads a header, EXIF or pixels."""


@contextmanager
def decoder_errors(name: str, config: ImageLoadConfig | None = None) -> Iterator[None]:
    """Around every call into Pillow on a user's image: each decoder error becomes one
    `ImageLoadError` line naming the image. Pillow's bomb warning is an error in here (an icon
    or GIF can grow while it loads, past the size its header declared)."""
    config = config or ImageLoadConfig()
    bomb = "error" if config.max_pixels <= (Image.MAX_IMAGE_PIXELS or math.inf) else "ignore"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(bomb, Image.DecompressionBombWarning)
            yield
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"cannot read {quote(name)}: not an image format this program reads (use JPEG or PNG)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(_too_large_message(name, None, config)) from None
    except DECODER_ERRORS as exc:
        raise ImageLoadError(f"cannot read {quote(name)}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """A decoder error in words a user can act on."""
    text = printable(" ".join(str(exc).split()), 100) or type(exc).__name__
    if "truncated" in text:
        return "the file is truncated (an incomplete download or copy?); re-copy it"
    if "TEXT_CHUNK" in text or "text chunks" in text:
        return f"its metadata (text chunks) is larger than an image needs ({text}); re-export it"
    if "TIFF" in text:  # EXIF is a TIFF structure
        return f"its EXIF metadata is damaged ({text}); re-export it without EXIF"
    return f"the image data is damaged ({text}); re-export or re-copy it"


@dataclass(frozen=True)
class ImageHeader:
    """What an image says about itself before its pixels: its format and size, the text
    chunks stored ahead of the pixel data (PNG), and the string tags of its EXIF block."""

    format: str
    width: int
    height: int
    text: dict[str, str]
    exif_text: dict[int, str]


def read_image_header(
    source: str | os.PathLike | bytes,
    config: ImageLoadConfig | None = None,
    name: str | None = None,
) -> ImageHeader:
    """The header of an image file (or its bytes), no pixel decoded; the pixel bound is
    checked. Raises `ImageLoadError` with one line for anything unreadable."""
    config = config or ImageLoadConfig()
    opener, name = _opener(source, config, name)
    with opener, decoder_errors(name, config):
        image = Image.open(opener)
        with image:
            _check_pixels(image, name, config)
            return image_header(image, name, config)


def image_header(
    image: Image.Image, name: str = "image", config: ImageLoadConfig | None = None
) -> ImageHeader:
    """The `ImageHeader` of an opened image, without loading its pixels (a PNG's `getexif()`
    would load them: its EXIF is read from the bytes the header holds)."""
    with decoder_errors(name, config):
        text = {
            k: str(v) for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)
        }
        exif = Image.Exif()
        raw = image.info.get("exif")
        if isinstance(raw, bytes | bytearray):
            exif.load(bytes(raw))
        elif image.format is None or image.format == "TIFF":  # in memory, or EXIF is the IFD
            exif = image.getexif()
        strings = {tag: value for tag, value in exif.items() if isinstance(value, str)}
        return ImageHeader(image.format or "unknown", image.width, image.height, text, strings)


def _opener(
    source: str | os.PathLike | bytes, config: ImageLoadConfig, name: str | None
) -> tuple[BinaryIO, str]:
    if isinstance(source, bytes):
        name = name or "<bytes>"
        if not source:
            raise ImageLoadError(f"cannot read {quote(name)}: the file is empty (0 bytes)")
        return io.BytesIO(source), name
    name = name or str(source)
    return open_image_file(source, config, name), name


def _decode(file: BinaryIO, name: str, config: ImageLoadConfig) -> np.ndarray:
    with decoder_errors(name, config):
        image = Image.open(file)
        with image:
            _check_pixels(image, name, config)
            image.load()
            _check_pixels(image, name, config)  # an icon or GIF may grow while it loads
            return image_to_rgb_array(image, name=name, config=config)


def _check_pixels(image: Image.Image, name: str, config: ImageLoadConfig) -> None:
    width, height = image.size
    if width * height > config.max_pixels:
        raise ImageLoadError(_too_large_message(name, (width, height), config))


def image_to_rgb_array(
    image: Image.Image, name: str = "image", config: ImageLoadConfig | None = None
) -> np.ndarray:
    """Convert a PIL image of any mode to an upright (H, W, 3) uint8 RGB array."""
    config = config or ImageLoadConfig()
    with decoder_errors(name, config):
        image = ImageOps.exif_transpose(image) or image
        width, height = image.size
        if min(width, height) < config.min_side:
            raise ImageLoadError(
                f"{quote(name)} is {width}×{height} pixels, too small to hold a face "
                f"(need at least {config.min_side}×{config.min_side}); use a larger photo"
            )
        return _to_rgb(image)


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # High bit-depth grayscale: scale by the range the values use, not by clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        top = (
            255.0
            if values.max(initial=0) <= 255
            else (65535.0 if values.max() <= 65535 else values.max())
        )
        gray = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        # Transparent pixels become white, as most viewers show them on a light page.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        background.alpha_composite(image.convert("RGBA"))
        image = background
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _too_large_message(path: str, size: tuple[int, int] | None, config: ImageLoadConfig) -> str:
    limit = config.max_pixels / 1e6
    if size is None:
        return (
            f"cannot read {quote(path)}: it decodes to more than {limit:.0f} megapixels; "
            "downscale it"
        )
    width, height = size
    return (
        f"cannot read {quote(path)}: {width}×{height} is {width * height / 1e6:.0f} megapixels, "
        f"over the {limit:.0f} MP limit; downscale it first"
    )
