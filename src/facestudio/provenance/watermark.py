"""An invisible watermark in the pixels of generated images (invisible-watermark's DWT-DCT-SVD).

Metadata and content credentials vanish when an image is re-encoded or screenshotted; a
watermark in the pixels survives ordinary handling. We embed a fixed 48-bit FaceStudio mark
with `invisible-watermark` (the library SDXL uses), method "dwtDctSvd". Measured on 12 photos
(benchmarks/watermark_robustness.py, results/watermark_robustness.json): its plain "dwtDct"
lost the mark on a quarter to half of them without any attack and on all of them after JPEG
quality 80, at every size up to 768 px; "dwtDctSvd" kept ≥ 92 % of the bits on every photo
after JPEG q80 plus a 0.75× resize from 224 px up (PSNR 37 dB at 224–256 px). An image
gets the mark only when it is at least `MIN_WATERMARK_SIDE` pixels on its short side, the
smallest size at which the mark was measured to survive JPEG quality 80 and a 0.75× resize,
and at least 256×256 pixels in area, the library's own floor. Smaller images (the bundled
64-px model's) carry the label and credentials only. The library comes with the `app` extra
(`pip install 'facestudio[app]'`); without it no image is marked, and the metadata says so
(`"watermark": null`).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np

MARK = b"FSTDIO"
"""The 48-bit payload: it says "made by FaceStudio" and nothing about the user."""
METHOD = "dwtDctSvd"
MIN_WATERMARK_SIDE = 224
"""Measured (benchmarks/results/watermark_robustness.json): the smallest short side at which
every test image kept ≥ `DETECTION_THRESHOLD` of the bits after JPEG q80 and a 0.75× resize."""
MIN_LIBRARY_PIXELS = 256 * 256
DETECTION_THRESHOLD = 0.9
"""Fraction of the 48 bits that must match: by chance that happens with probability ~1e-9."""
RESCALES = (1.0, 0.75, 0.5, 1.5, 2.0)
"""Scales at which `detect` also looks (the image resized back by 1/scale first): the mark's
blocks only line up at the size it was embedded at."""


@dataclass(frozen=True)
class WatermarkReading:
    """What `detect` found: the best fraction of matching bits, and at which rescale."""

    checked: bool
    bit_accuracy: float | None = None
    scale: float | None = None
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.bit_accuracy is not None and self.bit_accuracy >= DETECTION_THRESHOLD


def _bits() -> list[int]:
    return np.unpackbits(np.frombuffer(MARK, np.uint8)).tolist()


@functools.cache
def available() -> bool:
    """Whether invisible-watermark is installed (the `app` extra)."""
    return importlib.util.find_spec("imwatermark") is not None


def can_embed(width: int, height: int) -> bool:
    """Whether an image of this size is large enough for a robust mark."""
    return min(width, height) >= MIN_WATERMARK_SIDE and width * height >= MIN_LIBRARY_PIXELS


def method_for(width: int, height: int) -> str | None:
    """The method an image of this size is marked with here, or None (too small, or no
    library): what the image's metadata records."""
    return METHOD if available() and can_embed(width, height) else None


def embed(rgb: np.ndarray) -> np.ndarray:
    """`rgb` (H, W, 3) uint8 with the mark embedded; unchanged when too small or when the
    library is not installed."""
    height, width = rgb.shape[:2]
    if method_for(width, height) is None:
        return rgb
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", _bits())
    marked = encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1]), METHOD)
    return np.clip(np.round(marked), 0, 255).astype(np.uint8)[:, :, ::-1].copy()


def detect(rgb: np.ndarray) -> WatermarkReading:
    """Look for the mark in `rgb`, also at the usual rescales (see `RESCALES`)."""
    if not available():
        return WatermarkReading(
            False, reason="invisible-watermark is not installed (pip install 'facestudio[app]')"
        )
    from imwatermark import WatermarkDecoder
    from PIL import Image

    height, width = rgb.shape[:2]
    best: tuple[float, float] | None = None
    decoder = WatermarkDecoder("bits", len(MARK) * 8)
    for scale in RESCALES:
        size = (round(width / scale), round(height / scale))
        if not can_embed(*size):
            continue
        candidate = (
            rgb
            if scale == 1.0
            else np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
        )
        bits = decoder.decode(np.ascontiguousarray(candidate[:, :, ::-1]), METHOD)
        accuracy = float(np.mean(np.asarray(bits, dtype=int) == np.asarray(_bits())))
        if best is None or accuracy > best[0]:
            best = (accuracy, scale)
        if accuracy >= DETECTION_THRESHOLD:
            break
    if best is None:
        return WatermarkReading(
            False, reason=f"{width}×{height} is too small to carry the watermark"
        )
    return WatermarkReading(True, best[0], best[1])
