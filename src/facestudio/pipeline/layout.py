"""Where each person goes: the `regions` argument resolved to boxes or masks on the canvas,
non-overlapping masks at any U-Net resolution, and the `IdentityRouting` built from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.faces.regions import check_boxes, person_regions, region_masks
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
            return {"source": self.source, "boxes": [[round(v, 1) for v in b] for b in self.boxes]}
        return {"source": self.source, "masks": self.count}


def resolve_layout(
    regions,
    people: int,
    width: int,
    height: int,
    layout_image: Image.Image | np.ndarray | None,
    analyzer_factory,
) -> Layout | None:
    """None for one person (no routing needed); otherwise a `Layout` with one region per person.

    `regions`: None or "auto" (people detected in the layout image, else an even split), a
    list of (x0, y0, x1, y1) boxes in canvas pixels, or masks (N, H, W) at any resolution.
    """
    if people <= 1 and is_auto(regions):
        return None
    if is_auto(regions):
        return _auto_layout(people, width, height, layout_image, analyzer_factory)
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


def _auto_layout(people, width, height, layout_image, analyzer_factory) -> Layout:
    if layout_image is not None:
        found = analyzer_factory().analyze(np.asarray(_rgb(layout_image)))
        if len(found.faces) >= people:
            faces = sorted(found.faces[:people], key=lambda f: f.center[0])  # left to right
            sx, sy = width / found.width, height / found.height
            boxes = [
                (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
                for b in person_regions(faces, (found.width, found.height))
            ]
            anchors = [(f.center[0] * sx, f.center[1] * sy) for f in faces]
            return Layout(width, height, boxes=boxes, anchors=anchors, source="detected")
    step = width / people
    boxes = [(i * step, 0.0, (i + 1) * step, float(height)) for i in range(people)]
    return Layout(width, height, boxes=boxes, source="even split")


def _rgb(image) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else Image.fromarray(image)
