"""Where each person goes: the `regions` argument resolved to boxes or masks on the canvas,
non-overlapping masks at any U-Net resolution, and the `IdentityRouting` built from them.

`regions="auto"` with a layout image finds its faces, takes the `people` largest (left to
right), and then:
- "segmented": when the person segmenter is installed (`facestudio[segment]`) and finds a
  person under every one of those faces, the person mask split between them
  (`facestudio.faces.regions.segmented_regions`): regions follow bodies;
- "detected": otherwise, each face box grown into a person box (`person_regions`), the
  metadata saying why the segmenter was not used;
- "even split": with fewer faces than people, or no layout image, equal vertical strips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.faces.regions import (
    check_boxes,
    draw_region_masks,
    faces_on_people,
    person_regions,
    region_masks,
    segmented_regions,
)
from facestudio.faces.segmentation import INSTALL_HINT, PersonSegmenter, default_segmenter
from facestudio.faces.types import Face
from facestudio.model.multi_identity_attention import IdentityRouting, resample_regions


@dataclass
class Layout:
    """Person regions on a width×height canvas: boxes (with anchors) or soft masks."""

    width: int
    height: int
    boxes: list[tuple[float, float, float, float]] | None = None
    anchors: list[tuple[float, float]] | None = None
    masks: torch.Tensor | None = None  # (N, H, W) float in [0, 1]
    source: str = ""
    details: dict = field(default_factory=dict)  # how "auto" chose, for the metadata

    @property
    def count(self) -> int:
        return len(self.boxes) if self.boxes is not None else self.masks.shape[0]

    def masks_at(self, width: int, height: int) -> torch.Tensor:
        """(N, height, width) bool, non-overlapping; a face too small for the grid keeps a cell."""
        if self.boxes is not None:
            grid = region_masks(
                self.boxes, (self.width, self.height), (width, height), self.anchors
            )
            return torch.from_numpy(grid)
        return resample_regions(self.masks[None], (height, width))[0]

    def routing(
        self,
        token_owner: torch.Tensor,
        latent_size: tuple[int, int],
        levels: int,
        background: str = "random",
        generator: torch.Generator | None = None,
    ) -> IdentityRouting:
        """The routing of these regions for a (height, width) latent and a U-Net of `levels`."""
        return IdentityRouting.from_mask_function(
            token_owner,
            lambda height, width: self.masks_at(width, height),
            latent_size,
            levels,
            background,
            generator,
        )

    def describe(self) -> dict:
        if self.boxes is not None:
            regions = {"boxes": [[round(v, 1) for v in b] for b in self.boxes]}
        else:
            regions = {"masks": self.count}
        return {"source": self.source, **regions, **self.details}


SegmenterFactory = Callable[[], PersonSegmenter | None]
"""Gives the person segmenter for "auto" regions, or None to use face boxes only."""

MASK_SIDE = 512
"""Segmented regions are computed at the canvas size with its long side capped at this: the
U-Net sees them at an eighth of the canvas at most, and the split costs time per pixel."""


def resolve_layout(
    regions,
    people: int,
    width: int,
    height: int,
    layout_image: Image.Image | np.ndarray | None,
    analyzer_factory,
    segmenter_factory: SegmenterFactory = default_segmenter,
) -> Layout | None:
    """None for one person (no routing needed); otherwise a `Layout` with one region per person.

    `regions`: None or "auto" (people in the layout image, segmented or from face boxes, else
    an even split: see the module's docstring), a list of (x0, y0, x1, y1) boxes in canvas
    pixels, or masks (N, H, W) at any resolution.
    """
    if people <= 1 and is_auto(regions):
        return None
    if is_auto(regions):
        return auto_layout(people, width, height, layout_image, analyzer_factory, segmenter_factory)
    if isinstance(regions, str):
        raise FaceStudioError(f"regions must be 'auto', boxes or masks, got '{regions}'")
    if isinstance(regions, np.ndarray | torch.Tensor) and regions.ndim == 3:
        masks = torch.as_tensor(np.asarray(regions, dtype=np.float32))
        layout = Layout(width, height, masks=masks.clamp(0, 1), source="masks")
    elif isinstance(regions, Sequence) and regions and isinstance(regions[0], Image.Image):
        arrays = [
            np.asarray(m.convert("L").resize((width, height)), np.float32) / 255 for m in regions
        ]
        layout = Layout(width, height, masks=torch.from_numpy(np.stack(arrays)), source="masks")
    else:
        boxes = check_boxes(regions, (width, height))
        layout = Layout(width, height, boxes=boxes, source="boxes")
    if layout.count != people:
        raise FaceStudioError(
            f"{people} people but {layout.count} region(s); give exactly one region per person"
        )
    if layout.masks is not None:
        empty = [i for i in range(layout.count) if not layout.masks[i].max() > 0]
        if empty:
            raise FaceStudioError(f"region mask(s) {empty} are empty; give each person some area")
    return layout


def is_auto(regions) -> bool:
    """Whether `regions` asks for automatic regions (None or "auto")."""
    return regions is None or (isinstance(regions, str) and regions == "auto")


def auto_layout(
    people: int,
    width: int,
    height: int,
    layout_image: Image.Image | np.ndarray | None,
    analyzer_factory,
    segmenter_factory: SegmenterFactory = default_segmenter,
) -> Layout:
    """The "auto" regions of `people` on a width×height canvas onto which `layout_image` is
    stretched: segmented, from face boxes, or an even split (the module's docstring says when).
    `segmenter_factory=lambda: None` gives today's face-box regions."""
    if layout_image is not None:
        picture = np.asarray(_rgb(layout_image))
        found = analyzer_factory().analyze(picture)
        if len(found.faces) >= people:
            faces = sorted(found.faces[:people], key=lambda f: f.center[0])  # left to right
            segmented, why = _segmented_layout(picture, faces, width, height, segmenter_factory)
            return segmented or _face_box_layout(faces, picture, width, height, why)
    step = width / people
    boxes = [(i * step, 0.0, (i + 1) * step, float(height)) for i in range(people)]
    return Layout(width, height, boxes=boxes, source="even split")


def preview_regions(
    image: Image.Image | np.ndarray,
    people: int,
    analyzer_factory,
    segmenter_factory: SegmenterFactory = default_segmenter,
) -> tuple[Image.Image, Layout]:
    """What "auto" regions would give `people` people laid out from `image`, drawn on it (each
    region tinted in its face's colour, the rest dimmed), and the `Layout` itself (its
    `describe()` says which kind). The layout is on a canvas of the image's own size."""
    picture = np.asarray(_rgb(image))
    height, width = picture.shape[:2]
    layout = auto_layout(people, width, height, picture, analyzer_factory, segmenter_factory)
    mask_w, mask_h = _mask_size(width, height)
    return draw_region_masks(picture, layout.masks_at(mask_w, mask_h).numpy()), layout


def _segmented_layout(
    picture: np.ndarray, faces: list[Face], width: int, height: int, segmenter_factory
) -> tuple[Layout | None, str]:
    """Regions from the person mask, or None and why not."""
    segmenter = segmenter_factory()
    if segmenter is None:
        return None, f"not installed ({INSTALL_HINT})"
    person_mask = segmenter.person_mask(picture)
    missing = [i for i, on in enumerate(faces_on_people(person_mask, faces)) if not on]
    if missing:
        return None, f"{segmenter.name} found no person at face(s) {missing} (left to right)"
    masks = segmented_regions(person_mask, faces, _mask_size(width, height))
    sx, sy = width / picture.shape[1], height / picture.shape[0]
    seeds = [[round(v * s, 1) for v, s in zip(f.box, (sx, sy, sx, sy), strict=True)] for f in faces]
    layout = Layout(
        width,
        height,
        masks=torch.from_numpy(masks.astype(np.float32)),
        source="segmented",
        details={"segmenter": segmenter.name, "faces": seeds},  # faces: canvas pixels
    )
    return layout, ""


def _face_box_layout(
    faces: list[Face], picture: np.ndarray, width: int, height: int, why: str
) -> Layout:
    """Person boxes grown from the face boxes, anchored at the faces, on the canvas."""
    size = (picture.shape[1], picture.shape[0])
    sx, sy = width / size[0], height / size[1]
    boxes = [(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in person_regions(faces, size)]
    anchors = [(f.center[0] * sx, f.center[1] * sy) for f in faces]
    details = {"segmenter": why} if why else {}
    return Layout(width, height, boxes=boxes, anchors=anchors, source="detected", details=details)


def _mask_size(width: int, height: int) -> tuple[int, int]:
    """The canvas size with its long side at most `MASK_SIDE`."""
    scale = min(1.0, MASK_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rgb(image) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else Image.fromarray(image)
