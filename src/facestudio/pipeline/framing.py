"""Auto-crop: a style image framed around its people before it lays out several people.

A group photo used as the style of a 128-px image leaves its faces a few pixels wide, too
small for a region to carry an identity, and resizing it to the output's shape distorts them.
So, when several people are placed automatically from a style image with (at least) that many
faces in it, the style image is first cropped:

- around every face detected in it, each face box grown by `margin` of its own width and
  height on every side (0.6 frames a face about as training portraits do, where the face box
  is a little under half the side), the margin stopping at the photo's edges;
- to the output's aspect ratio, as tight as that allows, centred on the faces and moved
  inside the photo; if the photo is too narrow or too short for that shape even at full
  size, the margin gives way first, and only then are its edge pixels repeated to fill the
  frame (nothing is stretched, no face is cut).

The regions and masks are then found in the cropped image, so they are in its frame. The crop
is on by default (`auto_crop=True`, `--no-auto-crop` in the CLI turns it off) and recorded in
each image's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facestudio.faces.regions import Box
from facestudio.pipeline.layout import is_auto

MARGIN = 0.6
"""Context kept around each face, in units of that face's width (sides) and height (above, below)."""


@dataclass(frozen=True)
class Framing:
    """The crop of a style image: its box in the photo's pixels (it may reach past the photo's
    edges, which are then repeated) and the cropped image."""

    box: tuple[int, int, int, int]
    image: Image.Image
    faces: int

    def describe(self) -> dict:
        return {"box": list(self.box), "faces": self.faces}


def auto_frame(
    enabled: bool,
    style_image: Image.Image | np.ndarray | None,
    image: Image.Image | np.ndarray | None,
    regions,
    people: int,
    width: int,
    height: int,
    analyzer_factory,
) -> Framing | None:
    """The pipeline's auto-crop: applied when it is `enabled` and several people are placed
    automatically from the style image (no image-to-image input, no regions given)."""
    if not enabled or style_image is None or image is not None or people < 2:
        return None
    if not is_auto(regions):
        return None
    return frame_people(style_image, width, height, people, analyzer_factory)


def frame_people(
    style_image: Image.Image | np.ndarray,
    width: int,
    height: int,
    people: int,
    analyzer_factory,
    margin: float = MARGIN,
) -> Framing | None:
    """The style image cropped around its faces to a width:height frame, or None when it has
    fewer faces than `people` (the layout then does not come from its faces either)."""
    picture = np.asarray(
        style_image.convert("RGB") if isinstance(style_image, Image.Image) else style_image
    )
    faces = analyzer_factory().analyze(picture).faces
    if not faces or len(faces) < people:
        return None
    size = (picture.shape[1], picture.shape[0])
    box = framing_box([face.box for face in faces], size, width / height, margin)
    return Framing(box, crop(picture, box), len(faces))


def framing_box(
    faces: Sequence[Box], image_size: tuple[int, int], aspect: float, margin: float = MARGIN
) -> tuple[int, int, int, int]:
    """The tightest box of `aspect` (width / height) holding every face with its margin.

    `image_size` is (width, height). The box lies inside the image when a box of that shape
    holding every face fits there; otherwise it reaches past the edges as little as it can.
    """
    width, height = image_size
    tight = _union(faces, 0.0, image_size)
    loose = _union(faces, margin, image_size)
    # The margin gives way when the photo is too small for it at this aspect ratio.
    fitting = min(width, height * aspect)
    wanted = loose if _shape_width(loose, aspect) <= fitting else tight
    box_width = max(_shape_width(wanted, aspect), min(fitting, _shape_width(loose, aspect)))
    box_height = box_width / aspect
    centre_x, centre_y = (wanted[0] + wanted[2]) / 2, (wanted[1] + wanted[3]) / 2
    left = _place(centre_x - box_width / 2, box_width, width, wanted[0], wanted[2])
    top = _place(centre_y - box_height / 2, box_height, height, wanted[1], wanted[3])
    box_w, box_h = max(1, round(box_width)), max(1, round(box_height))
    x0, y0 = round(left), round(top)
    if box_w <= width:  # rounding must not push a fitting box past an edge
        x0 = min(max(x0, 0), width - box_w)
    if box_h <= height:
        y0 = min(max(y0, 0), height - box_h)
    return x0, y0, x0 + box_w, y0 + box_h


def crop(picture: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """`picture` cut to `box`; where the box reaches past an edge, the edge pixels repeat."""
    x0, y0, x1, y1 = box
    height, width = picture.shape[:2]
    pad_top, pad_left = max(0, -y0), max(0, -x0)
    padding = ((pad_top, max(0, y1 - height)), (pad_left, max(0, x1 - width)), (0, 0))
    padded = np.pad(picture, padding, mode="edge") if any(map(any, padding)) else picture
    return Image.fromarray(padded[y0 + pad_top : y1 + pad_top, x0 + pad_left : x1 + pad_left])


def _union(faces: Sequence[Box], margin: float, image_size: tuple[int, int]) -> Box:
    """The box around all faces, each grown by `margin` of its size, clipped to the image."""
    width, height = image_size
    x0 = min(b[0] - margin * (b[2] - b[0]) for b in faces)
    y0 = min(b[1] - margin * (b[3] - b[1]) for b in faces)
    x1 = max(b[2] + margin * (b[2] - b[0]) for b in faces)
    y1 = max(b[3] + margin * (b[3] - b[1]) for b in faces)
    return max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)


def _shape_width(box: Box, aspect: float) -> float:
    """Width of the smallest box of `aspect` that holds `box`."""
    return max(box[2] - box[0], (box[3] - box[1]) * aspect)


def _place(start: float, length: float, limit: float, low: float, high: float) -> float:
    """Move a span of `length` to lie inside [0, limit] where it fits, keeping [low, high] in it."""
    start = min(max(start, high - length), low)  # hold what must be held
    if length <= limit:
        return min(max(start, 0.0), limit - length)
    return min(max(start, limit - length), 0.0)  # too long: reach past both edges evenly-ish
