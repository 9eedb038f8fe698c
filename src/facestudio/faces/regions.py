"""Person regions for multi-identity generation: boxes from faces or from the user, as masks,
or a person mask split between faces.

A person region is the face box expanded to cover the head and upper body (see
`PersonRegionConfig`), clipped to the image. Where regions of neighbours overlap, each pixel
goes to the person whose face (or box) centre is nearest, so masks never overlap and no pixel
sees two identities.

With a person mask (`facestudio.faces.segmentation`), `segmented_regions` gives each face the
person pixels nearest to it instead (see `SegmentSplitConfig`): regions follow bodies, never
overlap, each holds its own face box and no other, and pixels that are no person's stay out
of every region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage import measure

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


@dataclass(frozen=True)
class SegmentSplitConfig:
    """How a person mask is shared between faces.

    A pixel is a person where the mask is at least `threshold`. Each person pixel goes to the
    face nearest to it in units of that face's width (across) and height (up and down), with
    distances below a face divided by `below`: a body hangs under its face, so a chest is
    nearer its own face than the neighbour's at the same height. A face counts as found on
    a person when at least `on_person` of its box is person.
    """

    threshold: float = 0.5
    below: float = 3.0
    on_person: float = 0.5


def faces_on_people(
    person_mask: np.ndarray, faces: Sequence[Face], config: SegmentSplitConfig | None = None
) -> list[bool]:
    """For each face, whether the (H, W) person mask covers enough of its box."""
    config = config or SegmentSplitConfig()
    person = person_mask >= config.threshold
    return [
        bool(window.size) and float(window.mean()) >= config.on_person
        for window in (_window(person, face.box) for face in faces)
    ]


def segmented_regions(
    person_mask: np.ndarray,
    faces: Sequence[Face],
    mask_size: tuple[int, int] | None = None,
    config: SegmentSplitConfig | None = None,
) -> np.ndarray:
    """Non-overlapping boolean masks (N, mask_height, mask_width), one per face, in order.

    `person_mask` is (H, W) in [0, 1] at the size of the image the faces were found in;
    `mask_size` = (width, height) of the masks (default the image's), the image stretched to
    it. Region i is the person pixels nearest face i (`SegmentSplitConfig`) that connect to
    face i's box, plus that box whether or not the mask covers it; where face boxes overlap,
    the nearer face centre wins. A face too small to cover a mask pixel keeps the pixel under
    its centre, unless another face's box claims it.
    """
    config = config or SegmentSplitConfig()
    height, width = person_mask.shape
    mask_w, mask_h = mask_size or (width, height)
    scaled = [_scaled_box(face.box, mask_w / width, mask_h / height) for face in faces]
    person = _resized(person_mask, (mask_w, mask_h)) >= config.threshold
    owner, _ = _nearest_face(scaled, (mask_w, mask_h), config.below, inside_box=False)
    box_owner, in_box = _nearest_face(scaled, (mask_w, mask_h), config.below, inside_box=True)
    owner = np.where(in_box, box_owner, owner)
    person |= in_box
    owner = _connected_to_faces(np.where(person, owner, -1), in_box)
    masks = owner[None] == np.arange(len(faces))[:, None, None]
    _keep_a_pixel_each(masks, scaled, in_box)
    return masks


def draw_region_masks(image: np.ndarray | Image.Image, masks: np.ndarray) -> Image.Image:
    """`image` with region i tinted in colour i (the colours `draw_faces` gives face i) and
    everything outside every region dimmed, so people see who gets which pixels.

    `masks` is (N, h, w) bool at any size; it is stretched to the image.
    """
    from facestudio.faces.drawing import _COLORS  # the face colours, so tint i matches face i

    canvas = image.convert("RGB") if isinstance(image, Image.Image) else Image.fromarray(image)
    pixels = np.asarray(canvas, np.float32)
    size = canvas.size
    out = pixels * 0.45
    for i, mask in enumerate(masks):
        inside = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size)) > 127
        tint = 0.6 * pixels + 0.4 * np.asarray(_COLORS[i % len(_COLORS)], np.float32)
        out[inside] = tint[inside]
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))


def _window(array: np.ndarray, box: Box) -> np.ndarray:
    """The part of `array` under `box` (pixel centres inside it)."""
    x0, y0, x1, y1 = (round(v) for v in box)
    return array[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]


def _scaled_box(box: Box, sx: float, sy: float) -> Box:
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    image = Image.fromarray(mask.astype(np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def _nearest_face(
    boxes: Sequence[Box], size: tuple[int, int], below: float, inside_box: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(owner, claimed): the index of the nearest face at each pixel centre, and where any
    face could claim it (everywhere, or with `inside_box` only inside face boxes)."""
    width, height = size
    best = np.full((height, width), np.inf, dtype=np.float32)
    owner = np.zeros((height, width), dtype=np.int64)
    for i, box in enumerate(boxes):
        rows, cols = _box_slices(box, size) if inside_box else (slice(None), slice(None))
        xs = np.arange(width, dtype=np.float32)[cols] + 0.5
        ys = np.arange(height, dtype=np.float32)[rows] + 0.5
        distance = _face_distance(box, xs, ys, below)
        nearer = distance < best[rows, cols]
        best[rows, cols][nearer] = distance[nearer]
        owner[rows, cols][nearer] = i
    return owner, np.isfinite(best)


def _face_distance(box: Box, xs: np.ndarray, ys: np.ndarray, below: float) -> np.ndarray:
    """(len(ys), len(xs)) distance from the face centre in face widths and heights, the
    distance below the face divided by `below`."""
    x0, y0, x1, y1 = box
    dx = (xs - (x0 + x1) / 2) / max(x1 - x0, 1e-6)
    dy = (ys - (y0 + y1) / 2) / max(y1 - y0, 1e-6)
    dy = np.where(dy > 0, dy / below, dy)
    return np.hypot(dx[None, :], dy[:, None])


def _box_slices(box: Box, size: tuple[int, int]) -> tuple[slice, slice]:
    """The rows and columns whose pixel centres lie inside `box` (x1, y1 exclusive)."""
    width, height = size

    def span(low: float, high: float, limit: int) -> slice:
        first = min(max(int(np.ceil(low - 0.5)), 0), limit)
        return slice(first, min(max(int(np.ceil(high - 0.5)), first), limit))

    return span(box[1], box[3], height), span(box[0], box[2], width)


def _connected_to_faces(owner: np.ndarray, in_box: np.ndarray) -> np.ndarray:
    """`owner` (-1 for nobody) less each person's pieces that do not touch their face box
    (8-connected): a hand or shoulder cut off from its face by another person is more likely
    that other person's, so it is nobody's rather than a guess."""
    pieces = measure.label(owner, background=-1, connectivity=2)
    kept = np.unique(pieces[in_box])
    return np.where(np.isin(pieces, kept[kept > 0]), owner, -1)


def _keep_a_pixel_each(masks: np.ndarray, boxes: Sequence[Box], in_box: np.ndarray) -> None:
    """An empty region takes the pixel under its face centre, unless a face box owns it."""
    height, width = masks.shape[1:]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if masks[i].any():
            continue
        col = min(max(int((x0 + x1) / 2), 0), width - 1)
        row = min(max(int((y0 + y1) / 2), 0), height - 1)
        if not in_box[row, col]:
            masks[:, row, col] = False
            masks[i, row, col] = True
