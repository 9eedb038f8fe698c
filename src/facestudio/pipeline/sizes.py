"""Output sizes: what a model declares it makes well, and the size of one call.

A diffusion U-Net is convolutional, so it runs at any size, but it draws well only what it
was trained on: a model trained on 64×64 portraits makes a collage of tiny faces at 256×256
and a doubled face at 100 px wide. So a model states its sizes in `model_index.json`:

    "sizes": {"trained": [64, 64], "people": "side_by_side"}

- `trained`: [width, height] of its training images, in pixels (a multiple of the
  autoencoder's factor);
- `people`: how several people share an image. "side_by_side": each person gets a
  trained-size tile of their own, in a row (a portrait model: n people make n·width ×
  height); "together": every image is the trained size, whatever the number of people (a
  model trained on group images).

That size is the only one such a model makes: a call without a size gets it (so several
people get room, never a squeezed single portrait), and any other is refused in one line that
names the supported size; nothing is resized behind the user's back, since upscaling a small
image adds no detail and a user who wants it can resize the PNG. A model without the
declaration (e.g. a Stable Diffusion conversion) keeps the general rule: default its native
side (U-Net `sample_size` × the autoencoder's factor), any multiple of the factor up to
`limits.max_side_for` it.

Every front end asks this module, through `GenerationRequest.size` and `.validate`: the
Python API, the CLI, the HTTP API (and its `/v1/models`, via `describe`) and the page (its
size control, via `offered_sizes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facestudio.errors import FaceStudioError, ModelLoadError
from facestudio.fields import field_ref
from facestudio.pipeline import limits

if TYPE_CHECKING:
    from facestudio.pipeline.model_info import ModelInfo

SIDE_BY_SIDE = "side_by_side"
TOGETHER = "together"
ARRANGEMENTS = (SIDE_BY_SIDE, TOGETHER)
DECLARATION_KEYS = ("trained", "people")

MIN_SIDE = 16
"""Smallest width or height in pixels: a face needs at least this much room."""


@dataclass(frozen=True)
class SizePolicy:
    """The sizes a model declares it makes well (see the module's docstring)."""

    trained_width: int
    trained_height: int
    people: str  # one of ARRANGEMENTS

    @classmethod
    def from_config(cls, value, vae_factor: int, where: str) -> SizePolicy | None:
        """The `sizes` entry of a model_index.json (None when absent), checked against the
        model's autoencoder factor; a malformed one is a one-line `ModelLoadError`."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ModelLoadError(f"{where}: 'sizes' must be an object {_EXAMPLE}")
        unknown = sorted(set(value) - set(DECLARATION_KEYS))
        if unknown:
            raise ModelLoadError(f"{where}: 'sizes' has unknown key(s) {unknown}; {_EXAMPLE}")
        trained = value.get("trained")
        if (
            not isinstance(trained, list | tuple)
            or len(trained) != 2
            or not all(_whole(side) and MIN_SIDE <= side <= limits.MAX_SIDE for side in trained)
        ):
            raise ModelLoadError(
                f"{where}: 'sizes.trained' must be [width, height] in pixels, each "
                f"{MIN_SIDE} to {limits.MAX_SIDE}, got {trained!r}"
            )
        if any(side % vae_factor for side in trained):
            raise ModelLoadError(
                f"{where}: 'sizes.trained' {list(trained)} is not a multiple of {vae_factor}, "
                "the autoencoder's factor; the config is damaged"
            )
        if value.get("people") not in ARRANGEMENTS:
            raise ModelLoadError(
                f"{where}: 'sizes.people' must be one of {', '.join(ARRANGEMENTS)}, got "
                f"{value.get('people')!r}"
            )
        return cls(int(trained[0]), int(trained[1]), str(value["people"]))

    def to_config(self) -> dict:
        """The declaration as model_index.json stores it."""
        return {"trained": [self.trained_width, self.trained_height], "people": self.people}

    @property
    def trained(self) -> str:
        return f"{self.trained_width}×{self.trained_height}"

    @property
    def max_people(self) -> int:
        """People that fit the largest canvas the limits allow."""
        if self.people == TOGETHER:
            return limits.MAX_PEOPLE
        return min(limits.MAX_PEOPLE, limits.MAX_SIDE // self.trained_width)

    def supported(self, people: int) -> tuple[int, int]:
        """The (width, height) this model makes `people` people at (no people: one tile)."""
        if self.people == TOGETHER:
            return self.trained_width, self.trained_height
        return max(1, people) * self.trained_width, self.trained_height

    def rule(self) -> str:
        """The declaration in words, for messages and the page."""
        if self.people == TOGETHER:
            return f"makes every image at {self.trained}, whatever the number of people"
        return f"makes one {self.trained} tile per person, side by side"


_EXAMPLE = 'like {"trained": [64, 64], "people": "side_by_side"}'


def output_size(
    width: int | None, height: int | None, people: int, info: ModelInfo | None
) -> tuple[int | None, int | None]:
    """The (width, height) of a call: as given, else what the model declares for `people`
    people (else its native side); None for a side not given when the model is not known."""
    if info is None:
        return width, height
    if info.sizes is None:
        return width or info.native_side, height or info.native_side
    wanted_width, wanted_height = info.sizes.supported(people)
    return width or wanted_width, height or wanted_height


def check_size(width: int | None, height: int | None, people: int, info: ModelInfo | None) -> None:
    """Refuse, in one line, a size this model cannot make (or cannot make well, when it
    declares its sizes) before any work."""
    factor = info.vae_factor if info is not None else 1
    for name, value in (("width", width), ("height", height)):
        if value is None:
            continue
        if not _whole(value) or value < MIN_SIDE:
            raise FaceStudioError(
                f"{name} must be a whole number of pixels ≥ {MIN_SIDE}, got {value}"
            )
        if info is None or info.sizes is None:
            _check_side_limit(name, value, info)
        if value % factor:
            near = max(factor, round(value / factor) * factor)
            raise FaceStudioError(
                f"{name} {value} is not a multiple of {factor}, which this model needs; try {near}"
            )
    if info is not None and info.sizes is not None:
        _check_declared(width, height, people, info)
    final_width, final_height = output_size(width, height, people, info)
    if final_width and final_height and final_width * final_height > limits.MAX_PIXELS:
        raise FaceStudioError(
            f"{final_width}×{final_height} is over {limits.MAX_PIXELS / 1e6:.1f} megapixels; "
            "make it smaller"
        )


def _check_side_limit(name: str, value: int, info: ModelInfo | None) -> None:
    top = info.max_side if info is not None else limits.MAX_SIDE
    if value > top:
        why = (
            f"this model's limit ({limits.MAX_NATIVE_MULTIPLE}× its native {info.native_side})"
            if info is not None and top < limits.MAX_SIDE
            else "the limit"
        )
        raise FaceStudioError(f"{name} {value} is over {why} of {top} pixels; use at most {top}")


def _check_declared(width: int | None, height: int | None, people: int, info: ModelInfo) -> None:
    sizes = info.sizes
    if people > sizes.max_people:
        raise FaceStudioError(
            f"model '{info.name}' {sizes.rule()}: {people} people would need "
            f"{sizes.trained_width * people} pixels, over the {limits.MAX_SIDE}-pixel limit; "
            f"at most {sizes.max_people} people side by side"
        )
    wanted = sizes.supported(people)
    given = output_size(width, height, people, info)
    if given == wanted:
        return
    count = f"{max(1, people)} {'person' if max(1, people) == 1 else 'people'}"
    raise FaceStudioError(
        f"model '{info.name}' was trained at {sizes.trained} and {sizes.rule()}: "
        f"{wanted[0]}×{wanted[1]} for {count}, not {given[0]}×{given[1]}; leave out "
        f"{field_ref('width')} and {field_ref('height')} (they follow the people) or give "
        f"{wanted[0]} and {wanted[1]}"
    )


def offered_sizes(info: ModelInfo, people: int) -> list[tuple[int, int]]:
    """The sizes a front end offers for `people` people, the default first: the declared one
    alone, or for a model without a declaration its native square and a few multiples."""
    if info.sizes is not None:
        return [info.sizes.supported(people)]
    native, top = info.native_side, info.max_side
    candidates = [(native, native), (2 * native, native), (native, 2 * native)]
    candidates += [(2 * native, 2 * native), (max(1, people) * native, native)]
    offered: list[tuple[int, int]] = []
    for size in candidates:
        if max(size) <= top and size not in offered:
            offered.append(size)
    return offered


def describe(info: ModelInfo) -> dict:
    """The sizes as `/v1/models` advertises them."""
    if info.sizes is None:
        return {
            "declared": False,
            "default": [info.native_side, info.native_side],
            "multiple": info.vae_factor,
            "min_side": MIN_SIDE,
            "max_side": info.max_side,
            "max_pixels": limits.MAX_PIXELS,
            "rule": (
                f"any width and height from {MIN_SIDE} to {info.max_side} pixels in "
                f"multiples of {info.vae_factor}; default {info.native_side}×{info.native_side}"
            ),
        }
    sizes = info.sizes
    return {
        "declared": True,
        **sizes.to_config(),
        "rule": f"trained at {sizes.trained}; {sizes.rule()}; other sizes are refused",
        "supported": [
            {"people": people, "width": size[0], "height": size[1]}
            for people in range(1, sizes.max_people + 1)
            for size in [sizes.supported(people)]
        ],
    }


def _whole(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
