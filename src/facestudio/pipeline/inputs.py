"""Loading a validated `GenerationRequest`'s inputs: images decoded, faces found, people
embedded, regions laid out, seeds drawn. No model weights are needed, so front ends run this
before the model loads and "no face found" costs a face detection, not a model load.

Everything that ends in an image's metadata names files by their name only.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import FaceAnalyzer
from facestudio.faces.regions import mask_faces
from facestudio.images import image_to_rgb_array, load_image
from facestudio.pipeline.identities import Person, mix_people, resolve_people
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.request import GenerationRequest, Upload

if TYPE_CHECKING:
    from facestudio.pipeline.framing import Framing
    from facestudio.pipeline.layout import Layout

RANDOM_SEED_BOUND = 2**31
"""A drawn seed is below this, so that it is short to type when remaking an image."""


@dataclass
class PreparedRequest:
    """A request's inputs, ready for the denoising loop."""

    request: GenerationRequest
    people: list[Person]
    style_image: np.ndarray | None  # RGB, faces masked when the model asks for it
    image: np.ndarray | None  # RGB content image for image-to-image
    layout: Layout | None
    framing: Framing | None  # the style image's auto-crop around its people, if any
    width: int
    height: int
    seeds: list[int]

    @property
    def warnings(self) -> list[str]:
        return [w for p in self.people for w in p.warnings]


def prepare_request(
    request: GenerationRequest,
    analyzer_factory: Callable[[], FaceAnalyzer],
    info: ModelInfo,
) -> PreparedRequest:
    """Validate `request` against `info`, then load and analyse every input it names."""
    request.validate(info)
    width, height = request.size(info)
    style = load_input_image(request.style_image, "style image")
    content = load_input_image(request.image, "content image")
    people = _resolve_people(request, analyzer_factory, info)
    # Imported only now: layouts pull in the model's attention code (diffusers, seconds), and
    # a photo without a face should fail before that.
    from facestudio.pipeline.framing import auto_frame
    from facestudio.pipeline.layout import resolve_layout

    if request.mix_weights is not None:
        people = [mix_people(people, request.mix_weights)]
    boxes = request.boxes()
    regions = boxes if boxes is not None else request.regions
    framing = auto_frame(
        request.auto_crop, style, content, regions, len(people), width, height, analyzer_factory
    )
    if framing is not None:
        style = np.asarray(framing.image)
    layout = resolve_layout(
        regions,
        len(people),
        width,
        height,
        content if content is not None else style,
        analyzer_factory,
    )
    if style is not None and info.style_faces == "mask":
        found = analyzer_factory().analyze(style)
        style = mask_faces(style, [face.box for face in found.faces])
    seed = request.seed if request.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
    seeds = [seed + i for i in range(request.num_images)]
    return PreparedRequest(request, people, style, content, layout, framing, width, height, seeds)


def load_input_image(value, what: str) -> np.ndarray | None:
    """An image input (path, upload, bytes, PIL image, array) as an (H, W, 3) uint8 array."""
    if value is None:
        return None
    if isinstance(value, Upload):
        return load_image(value.data, name=value.name)
    if isinstance(value, bytes):
        return load_image(value, name=what)
    if isinstance(value, str | os.PathLike):
        return load_image(value)
    if isinstance(value, Image.Image):
        return image_to_rgb_array(value, name=what)
    array = np.asarray(value)
    return np.ascontiguousarray(array)


def _resolve_people(request, analyzer_factory, info: ModelInfo) -> list[Person]:
    names: dict[int, str] = {}
    people = []
    for shots in request.people:
        entry = []
        for shot in shots:
            value = _face_input(shot)
            names[id(value)] = _public_name(shot)
            entry.append(value)
        people.append(entry)
    naming = _NamingAnalyzer(analyzer_factory, names)
    return resolve_people(people, lambda: naming, info.face_dim, request.face_index)


def _face_input(shot):
    if isinstance(shot, Upload):
        return load_image(shot.data, name=shot.name)
    if isinstance(shot, bytes):
        return load_image(shot, name="uploaded photo")
    return shot


def _public_name(shot) -> str:
    if isinstance(shot, Upload):
        return Path(shot.name).name or "uploaded photo"
    if isinstance(shot, str | os.PathLike):
        return Path(shot).name
    if isinstance(shot, bytes):
        return "<upload>"
    if isinstance(shot, Image.Image):
        return "<image>"
    return "<array>"


class _NamingAnalyzer:
    """The face analyzer, reporting each photo by its file name (never its folder) in the
    identities it returns and by its upload name in errors."""

    def __init__(self, factory: Callable[[], FaceAnalyzer], names: dict[int, str]) -> None:
        self._factory = factory
        self._names = names

    @property
    def threshold(self) -> float:
        return self._factory().threshold

    def identity(self, source, face_index: int | None = None):
        name = self._names.get(id(source))
        try:
            found = self._factory().identity(source, face_index)
        except FaceStudioError as exc:
            if name is None or isinstance(source, str | os.PathLike):
                raise  # a path is shown as the user gave it
            raise type(exc)(str(exc).replace("'<array>'", f"'{name}'")) from None
        if name is None:
            return found
        warnings = [w.replace(f"'{found.source}'", f"'{name}'") for w in found.warnings]
        return dataclasses.replace(found, source=name, warnings=warnings)
