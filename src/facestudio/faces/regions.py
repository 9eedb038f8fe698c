"""Person regions for multi-identity generation: boxes from faces or from the user, as masks.

A person region is the face box expanded to cover the head and upper body (see
`PersonRegionConfig`), clipped to the image. Where regions of neighbours overlap, each pixel
goes to the person whose face (or box) centre is nearest, so masks never overlap and no pixel
sees two identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facestudio.errors import FaceStudioError
from facestudio.faces.types import Face

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in pixels, x1 and y1 exclusive."""


@dataclass(frozen=True)
class PersonRegionConfig:
    """How a face box grows into a person region, in units of the face box's width/height.

    The defaults cover hair, shoulders and chest of an upright person: 3 face widths wide,
    from 0.75 face heights above the face to 4 face heights below it.
    """

    width: float = 3.0
    above: float = 0.75
    below: float = 4.0


def person_region(
    face: Face, image_size: tuple[int, int], config: PersonRegionConfig | None = None
) -> Box:
    """The person region of one face, clipped to `image_size` = (width, height)."""
    config = config or PersonRegionConfig()
    width, height = image_size
    cx = face.center[0]
    half = face.width * config.width / 2
    x0, y0, x1, y1 = (
        cx - half,
        face.box[1] - face.height * config.above,
        cx + half,
        face.box[3] + face.height * config.below,
    )
    return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))


def person_regions(
    faces: Sequence[Face], image_size: tuple[int, int], config: PersonRegionConfig | None = None
) -> list[Box]:
    return [person_region(face, image_size, config) for face in faces]


def check_boxes(boxes: Sequence[Sequence[float]], image_size: tuple[int, int]) -> list[Box]:
    """Validate user boxes: four numbers each, positive size, inside the canvas."""
    width, height = image_size
    checked = []
    for i, box in enumerate(boxes):
        if len(box) != 4:
            raise FaceStudioError(f"region {i} has {len(box)} numbers; give x0,y0,x1,y1 in pixels")
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise FaceStudioError(
                f"region {i} ({x0:g},{y0:g},{x1:g},{y1:g}) is empty; x1 > x0 and y1 > y0 are needed"
            )
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise FaceStudioError(
                f"region {i} ({x0:g},{y0:g},{x1:g},{y1:g}) is outside the {width}×{height} canvas; "
                "keep boxes within 0..width and 0..height"
            )
        checked.append((x0, y0, x1, y1))
    return checked


def region_masks(
    boxes: Sequence[Box],
    image_size: tuple[int, int],
    mask_size: tuple[int, int],
    anchors: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray:
    """Non-overlapping boolean masks of shape (N, mask_height, mask_width).

    `image_size` and `mask_size` are (width, height); a mask pixel belongs to a box when its
    centre, mapped to image coordinates, lies inside. Overlaps go to the nearest anchor (the
    face centres; box centres by default). A box too small to cover any pixel centre still gets
    the pixel under its anchor, unless another region claimed that pixel the same way.
    """
    width, height = image_size
    mask_w, mask_h = mask_size
    count = len(boxes)
    if anchors is None:
        anchors = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
    xs = (np.arange(mask_w) + 0.5) * (width / mask_w)
    ys = (np.arange(mask_h) + 0.5) * (height / mask_h)
    inside = np.zeros((count, mask_h, mask_w), dtype=bool)
    distance = np.full((count, mask_h, mask_w), np.inf)
    for i, ((x0, y0, x1, y1), (ax, ay)) in enumerate(zip(boxes, anchors, strict=True)):
        in_x = (xs >= x0) & (xs < x1)
        in_y = (ys >= y0) & (ys < y1)
        inside[i] = in_y[:, None] & in_x[None, :]
        # Distance in units of the box's size, so a large person is not out-claimed by a small one.
        dx = (xs[None, :] - ax) / max(x1 - x0, 1e-6)
        dy = (ys[:, None] - ay) / max(y1 - y0, 1e-6)
        distance[i] = np.where(inside[i], np.hypot(dx, dy), np.inf)
    owner = np.argmin(distance, axis=0)
    masks = np.zeros_like(inside)
    if count:
        claimed = np.isfinite(distance.min(axis=0))
        for i in range(count):
            masks[i] = claimed & (owner == i)
    forced: set[tuple[int, int]] = set()
    for i, (ax, ay) in enumerate(anchors):
        if masks[i].any():
            continue
        col = min(max(int(ax / width * mask_w), 0), mask_w - 1)
        row = min(max(int(ay / height * mask_h), 0), mask_h - 1)
        if (row, col) in forced:
            continue
        forced.add((row, col))
        masks[:, row, col] = False
        masks[i, row, col] = True
    return masks


def mask_faces(image: np.ndarray, boxes: Sequence[Box], grow: float = 1.2) -> np.ndarray:
    """A copy of `image` with each face box, grown by `grow`, filled with mid-grey.

    This is the style input of training by reconstruction: the scene without the face, which
    the identity input has to fill in.
    """
    masked = image.copy()
    for x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half_w, half_h = (x1 - x0) * grow / 2, (y1 - y0) * grow / 2
        top, bottom = max(0, round(cy - half_h)), min(image.shape[0], round(cy + half_h))
        left, right = max(0, round(cx - half_w)), min(image.shape[1], round(cx + half_w))
        masked[top:bottom, left:right] = 127
    return masked
