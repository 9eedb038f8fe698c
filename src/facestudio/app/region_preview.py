"""Where each person will go, shown before generating: the page's region preview.

With several people and `regions` "auto", the pipeline lays people out from the content image
(image-to-image) or the style image, after cropping a style image around its faces
(`facestudio.pipeline.framing`). `RegionPreview` runs the same steps on a request (the same
crop, `facestudio.pipeline.layout.preview_regions` for the regions) and draws them in the
output's shape, so a user sees which face becomes which person, and whether the regions come
from segmented bodies, face boxes or an even split, before waiting for the model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.pipeline.inputs import load_input_image
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.request import GenerationRequest

PREVIEW_HEIGHT = 256
"""Height of the drawn preview; its width follows the output's aspect ratio."""


@dataclass(frozen=True)
class Regions:
    """A drawn preview (None when there is nothing to draw) and what it shows, in words."""

    picture: Image.Image | None
    note: str


class RegionPreview:
    """The regions a request's people will get, with a face analyzer of the preview's own (no
    disk cache: nothing derived from an upload is written), used by one caller at a time."""

    def __init__(self, info: ModelInfo) -> None:
        self._info = info
        self._config = FaceAnalyzerConfig.from_dict({**info.face_analysis, "cache_dir": None})
        self._analyzer: FaceAnalyzer | None = None
        self._lock = threading.Lock()

    def __call__(self, request: GenerationRequest) -> Regions:
        """The regions of a request that `validate` accepted."""
        from facestudio.pipeline.layout import is_auto

        people = request.people_after_mixing
        if people < 2:
            return Regions(None, "")
        if not is_auto(request.regions):
            return Regions(None, f"{people} people in the regions you gave")
        source = request.image if request.image is not None else request.style_image
        if source is None:
            return Regions(
                None,
                f"{people} people in equal vertical strips, left to right (no style or content "
                "image to place them from)",
            )
        with self._lock:
            return self._draw(request, people)

    def _draw(self, request: GenerationRequest, people: int) -> Regions:
        from facestudio.pipeline.framing import auto_frame
        from facestudio.pipeline.layout import preview_regions

        width, height = request.size(self._info)
        style = load_input_image(request.style_image, "style image")
        content = load_input_image(request.image, "content image")
        framing = auto_frame(
            request.auto_crop, style, content, "auto", people, width, height, self._analyzer_for
        )
        picture = (
            np.asarray(framing.image)
            if framing is not None
            else (content if content is not None else style)
        )
        drawn, layout = preview_regions(picture, people, self._analyzer_for)
        shown = drawn.resize((round(PREVIEW_HEIGHT * width / height), PREVIEW_HEIGHT))
        return Regions(shown, _note(people, layout.describe(), framing is not None, request))

    def _analyzer_for(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = FaceAnalyzer(self._config)
        return self._analyzer


def _note(people: int, layout: dict, cropped: bool, request: GenerationRequest) -> str:
    """What the preview shows: from which image, how the regions were found, and why."""
    image = "content image" if request.image is not None else "style image"
    how = {
        "segmented": "split from the people the segmenter found",
        "detected": "grown from the faces found",
        "even split": f"equal vertical strips (fewer than {people} faces found in the {image})",
    }.get(layout["source"], layout["source"])
    note = f"{people} people, left to right, from the {image}: regions {how}"
    if cropped:
        note += "; the style image is cropped around its faces to the output's shape first"
    if layout.get("segmenter") and layout["source"] != "segmented":
        note += f" (segmenter: {layout['segmenter']})"
    return note
