"""`GenerationRequest`: one generation call, as every front end describes it, validated once.

The CLI, the Python API (`FaceStudioPipeline.__call__`), the HTTP API and the web UI all build
a `GenerationRequest` and run the same `validate(model_info)` on it. Validation is cheap (no
pixels decoded, no torch imported) and runs before anything expensive; loading photos and
finding faces (`prepare`, in `facestudio.pipeline.inputs`) comes next, and the model loads
last. So every mistake a user can make in a request costs milliseconds, not a model load.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Union

import numpy as np
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.fields import field_ref
from facestudio.pipeline import limits
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.sizes import check_size, output_size

DEFAULT_STRENGTH = 0.8
"""Image-to-image noise strength when a content image is given without one."""
DEFAULT_MIXED_ALPHA = 0.5
"""α with both a prompt and a style image and none given: the two branches weigh the same."""

BACKGROUNDS = ("random", "all")


@dataclass(frozen=True)
class Upload:
    """An uploaded image: the file's bytes and its name (metadata keeps the name only)."""

    name: str
    data: bytes

    def __repr__(self) -> str:  # never print kilobytes of image data in an error or a log
        return f"Upload({self.name!r}, {len(self.data)} bytes)"


ImageInput = Union[str, os.PathLike, bytes, Upload, Image.Image, np.ndarray]  # noqa: UP007
"""An image: a file path, an upload, its bytes, a PIL image or an (H, W, 3) uint8 RGB array."""
Shot = Any
"""One photo of a person (an `ImageInput`) or a face embedding (1-D array or torch tensor)."""


@dataclass
class GenerationRequest:
    """Everything one generation call needs besides the model.

    `people`: one entry per person; each a photo, an embedding, or a list of them (multi-shot).
    A single photo or embedding means one person. `mix_weights` blends all people into one.
    `image` + `strength`: image-to-image from a content image (`strength` needs `image`).
    `regions`: "auto" (people found in the content or style image, else an even split), boxes
    (x0, y0, x1, y1) in output pixels (or the string "x0,y0,x1,y1;..."), or masks (N, H, W).
    `width`/`height`: default the size the model declares for this many people (one trained-size
    tile per person for a portrait model), else its native size; see
    `facestudio.pipeline.sizes`. `seed`: image i uses seed + i; None
    draws one. `auto_crop`: when several people are placed automatically from the style image,
    crop it around its faces to the output's shape first (see `facestudio.pipeline.framing`).
    """

    people: Any = field(default_factory=list)
    style_image: ImageInput | None = None
    image: ImageInput | None = None
    strength: float | None = None
    prompt: str | None = None
    regions: Any = "auto"
    width: int | None = None
    height: int | None = None
    num_inference_steps: int = 25
    prior_num_inference_steps: int = 25
    seed: int | None = None
    num_images: int = 1
    style_guidance_scale: float = 5.0
    face_guidance_scale: float = 5.0
    prior_guidance_scale: float | None = None  # None: the prior's own (model/text_prior.py)
    alpha: float | None = None
    mix_weights: Sequence[float] | None = None
    face_index: int | None = None
    background: str = "random"
    auto_crop: bool = True

    def __post_init__(self) -> None:
        self.people = normalize_people(self.people)
        if self.mix_weights is not None and not isinstance(self.mix_weights, list):
            self.mix_weights = list(self.mix_weights)

    # -- derived values --------------------------------------------------------------------

    @property
    def effective_strength(self) -> float | None:
        """The strength used: None without a content image."""
        if self.image is None:
            return None
        return DEFAULT_STRENGTH if self.strength is None else float(self.strength)

    @property
    def effective_alpha(self) -> float:
        """α of hybrid guidance: 1 without a prompt, 0 with a prompt only, 0.5 with both."""
        if self.alpha is not None:
            return float(self.alpha)
        if self.prompt is None:
            return 1.0
        return 0.0 if self.style_image is None else DEFAULT_MIXED_ALPHA

    @property
    def uses_text(self) -> bool:
        return self.prompt is not None and self.effective_alpha < 1.0

    @property
    def people_after_mixing(self) -> int:
        return 1 if self.mix_weights is not None and self.people else len(self.people)

    def size(self, info: ModelInfo | None) -> tuple[int | None, int | None]:
        """(width, height): as given, else what the model makes for these people (None if not
        known yet); the rule is `facestudio.pipeline.sizes.output_size`."""
        return output_size(self.width, self.height, self.people_after_mixing, info)

    def boxes(self) -> list[list[float]] | None:
        """The regions as boxes, when they are boxes; None for "auto" or masks."""
        if self.regions is None or (isinstance(self.regions, str) and self.regions == "auto"):
            return None
        if isinstance(self.regions, str):
            return parse_regions(self.regions)
        if _is_masks(self.regions):
            return None
        if not isinstance(self.regions, Sequence) or isinstance(self.regions, bytes):
            raise FaceStudioError(
                f"regions must be 'auto', boxes (x0, y0, x1, y1) or masks, got "
                f"{type(self.regions).__name__}"
            )
        return [_box(i, box) for i, box in enumerate(self.regions)]

    # -- validation ------------------------------------------------------------------------

    def validate(self, info: ModelInfo | None = None) -> None:
        """Refuse anything this request or this model cannot do, in one line, before any work.

        Cheap by design: no image is decoded and nothing heavy is imported. `info=None` (a hub
        model not read yet) checks what does not depend on the model; the pipeline checks the
        rest against its own `ModelInfo` before it starts.
        """
        self._check_people(info)
        self._check_images(info)
        self._check_text(info)
        self._check_size(info)
        self._check_counts(info)
        self._check_scales()
        self._check_regions(info)

    def _check_people(self, info: ModelInfo | None) -> None:
        if len(self.people) > limits.MAX_PEOPLE:
            raise FaceStudioError(
                f"{len(self.people)} people; at most {limits.MAX_PEOPLE} fit in one image"
            )
        for number, shots in enumerate(self.people, start=1):
            if not shots:
                raise FaceStudioError(f"person {number} was given with no photo or embedding")
            if len(shots) > limits.MAX_PHOTOS_PER_PERSON:
                raise FaceStudioError(
                    f"person {number} has {len(shots)} photos; at most "
                    f"{limits.MAX_PHOTOS_PER_PERSON} per person are used, pick the clearest"
                )
            for shot in shots:
                _check_shot(shot, f"photo of person {number}", info)
        if self.mix_weights is not None:
            _check_mix(self.mix_weights, len(self.people))
        if self.face_index is not None and (not _is_int(self.face_index) or self.face_index < 0):
            raise FaceStudioError(
                f"face index must be a whole number ≥ 0 (0 = largest face), got {self.face_index}"
            )

    def _check_images(self, info: ModelInfo | None) -> None:
        if self.style_image is not None:
            check_image_input(self.style_image, "style image")
            if info is not None and not info.has_style_encoder:
                raise FaceStudioError(
                    f"model '{info.name}' has no style encoder, so it cannot use a style image"
                )
        if self.image is not None:
            check_image_input(self.image, "content image")
        if self.strength is not None:
            if self.image is None:
                raise FaceStudioError(
                    "strength was given without a content image; add the image to start from "
                    f"({field_ref('image')}) or drop {field_ref('strength')}"
                )
            if not _is_number(self.strength) or not 0.0 < self.strength <= 1.0:
                raise FaceStudioError(f"strength must be in (0, 1], got {self.strength}")
        if not isinstance(self.auto_crop, bool):
            raise FaceStudioError(f"auto_crop must be true or false, got {self.auto_crop!r}")

    def _check_text(self, info: ModelInfo | None) -> None:
        if self.prompt is not None:
            if not isinstance(self.prompt, str) or not self.prompt.strip():
                raise FaceStudioError("the prompt is empty; give some text or leave it out")
            if len(self.prompt) > limits.MAX_PROMPT_CHARS:
                raise FaceStudioError(
                    f"the prompt has {len(self.prompt)} characters; at most "
                    f"{limits.MAX_PROMPT_CHARS} (the text encoder keeps about 300)"
                )
            if info is not None and not info.has_text_prior:
                raise FaceStudioError(
                    f"model '{info.name}' has no text prior, so it cannot follow a prompt; give "
                    f"a style image instead ({field_ref('style_image')}) or a model with text"
                )
        if self.alpha is not None:
            if not _is_number(self.alpha) or not 0.0 <= self.alpha <= 1.0:
                raise FaceStudioError(f"alpha must be between 0 and 1, got {self.alpha}")
            if self.alpha < 1.0 and self.prompt is None:
                raise FaceStudioError(
                    f"alpha {self.alpha} gives weight to the text branch; give a prompt or use "
                    "alpha 1"
                )
        if self.uses_text:
            top = info.prior_num_train_timesteps if info is not None else None
            _check_steps(self.prior_num_inference_steps, "prior steps", top, minimum=2)

    def _check_size(self, info: ModelInfo | None) -> None:
        check_size(self.width, self.height, self.people_after_mixing, info)

    def _check_counts(self, info: ModelInfo | None) -> None:
        _check_steps(
            self.num_inference_steps, "steps", info.max_steps if info is not None else None
        )
        if not _is_int(self.num_images) or not 1 <= self.num_images <= limits.MAX_IMAGES_PER_CALL:
            raise FaceStudioError(
                f"the number of images must be 1 to {limits.MAX_IMAGES_PER_CALL}, got "
                f"{self.num_images}; make several calls for more"
            )
        if self.seed is not None:
            last = limits.MAX_SEED - self.num_images + 1
            if not _is_int(self.seed) or not limits.MIN_SEED <= self.seed <= last:
                raise FaceStudioError(
                    f"seed must be a whole number from {limits.MIN_SEED} to {last} (image i uses "
                    f"seed + i), got {self.seed}"
                )
        if self.background not in BACKGROUNDS:
            raise FaceStudioError(
                f"background must be one of {', '.join(BACKGROUNDS)}, got {self.background!r}"
            )

    def _check_scales(self) -> None:
        for name, value in (
            ("style guidance scale", self.style_guidance_scale),
            ("face guidance scale", self.face_guidance_scale),
            ("prior guidance scale", self.prior_guidance_scale),
        ):
            if value is None and name == "prior guidance scale":
                continue
            if not _is_number(value) or not 0.0 <= value <= limits.MAX_GUIDANCE_SCALE:
                raise FaceStudioError(
                    f"the {name} must be a number from 0 to {limits.MAX_GUIDANCE_SCALE:g}, "
                    f"got {value}"
                )

    def _check_regions(self, info: ModelInfo | None) -> None:
        boxes = self.boxes()
        expected = self.people_after_mixing
        if boxes is None and not _is_masks(self.regions):
            return
        count = len(boxes) if boxes is not None else _mask_count(self.regions)
        if count != expected:
            mixed = " (mixing makes them one)" if self.mix_weights is not None else ""
            raise FaceStudioError(
                f"{expected} people{mixed} but {count} region(s); give exactly one region per "
                "person, or regions 'auto'"
            )
        width, height = self.size(info)
        if boxes is not None and width and height:
            from facestudio.faces.regions import check_boxes

            check_boxes(boxes, (width, height))

    # -- building from form fields ---------------------------------------------------------

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        files: Mapping[str, Sequence[Upload]] | None = None,
    ) -> GenerationRequest:
        """A request from form fields (strings, as HTML forms and multipart bodies send them)
        and uploaded files.

        Fields are named as this dataclass's fields; empty strings mean "not given". Numbers
        may be strings ("25"), `regions` "auto" or "x0,y0,x1,y1;...", `mix_weights` "0.7,0.3".
        `files`: `person_0`, `person_1`, ... (one or more photos each, in order),
        `style_image`, `image`. Unknown names are refused, so a typo is not silently ignored.
        """
        return cls(**_fields_from_mapping(data), **_files_from_mapping(files or {}))


# -- people and inputs --------------------------------------------------------------------------


def normalize_people(identities) -> list[list[Shot]]:
    """`identities` as the pipeline takes them → one list of shots per person."""
    if identities is None:
        return []
    if _is_single(identities):
        return [[identities]]
    if not isinstance(identities, Sequence) or isinstance(identities, bytes):
        raise FaceStudioError(
            "people must be a photo, an embedding, or a list with one entry per person, got "
            f"{type(identities).__name__}"
        )
    return [list(entry) if isinstance(entry, list | tuple) else [entry] for entry in identities]


def check_image_input(value, what: str) -> None:
    """An image given as a path, bytes, upload, PIL image or array: usable, judged cheaply."""
    if isinstance(value, str | os.PathLike):
        check_input_file(value, what)
    elif isinstance(value, bytes | Upload):
        data = value.data if isinstance(value, Upload) else value
        name = value.name if isinstance(value, Upload) else what
        if not data:
            raise FaceStudioError(f"{what} '{name}' is empty (0 bytes)")
        if len(data) > limits.MAX_UPLOAD_BYTES:
            raise FaceStudioError(
                f"{what} '{name}' is {len(data) / 2**20:.1f} MiB; at most "
                f"{limits.MAX_UPLOAD_BYTES // 2**20} MiB per image"
            )
    elif isinstance(value, Image.Image):
        return
    elif _is_array(value) and len(value.shape) == 3 and value.shape[2] == 3:
        if str(value.dtype) != "uint8":
            raise FaceStudioError(f"{what} array must be uint8 RGB (0–255), got {value.dtype}")
    else:
        kind = (
            f"an array of shape {tuple(value.shape)}" if _is_array(value) else type(value).__name__
        )
        raise FaceStudioError(
            f"{what} must be a file path, a PIL image or an (H, W, 3) uint8 RGB array, got {kind}"
        )


def check_input_file(path: str | os.PathLike, what: str) -> None:
    """A path to read an image from: an existing regular file (not a folder, FIFO, device)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FaceStudioError(f"cannot read {what} '{path}': no such file") from None
    except OSError as exc:
        raise FaceStudioError(f"cannot read {what} '{path}': {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
    )
    raise FaceStudioError(f"cannot read {what} '{path}': it is {kind}, not an image file")


def parse_regions(text: str) -> list[list[float]] | str:
    """'auto', or 'x0,y0,x1,y1;x0,y0,x1,y1' (output pixels) → "auto" or a list of boxes."""
    text = text.strip()
    if text in ("", "auto"):
        return "auto"
    boxes = []
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        try:
            values = [float(v) for v in part.split(",")]
        except ValueError:
            raise FaceStudioError(
                f"regions '{text}' is not 'auto' or 'x0,y0,x1,y1;...' numbers"
            ) from None
        boxes.append(_box(i, values))
    return boxes


def _check_shot(shot, what: str, info: ModelInfo | None) -> None:
    if _is_array(shot) and len(shot.shape) == 1:
        size = shot.shape[0]
        if info is not None and size != info.face_dim:
            raise FaceStudioError(
                f"a face embedding must have {info.face_dim} values for model '{info.name}', got "
                f"{size}; embed photos with the model's face backend"
            )
        if not np.all(np.isfinite(np.asarray(_numpy(shot), dtype=np.float64))):
            raise FaceStudioError(f"a face embedding of {what} has non-finite values")
        return
    check_image_input(shot, what)


def _check_mix(weights, people: int) -> None:
    if not people:
        raise FaceStudioError("mix weights were given but no people to mix")
    if len(weights) != people:
        raise FaceStudioError(
            f"{len(weights)} mix weight(s) for {people} people; give one weight per person"
        )
    if not all(_is_number(w) and w >= 0 for w in weights):
        raise FaceStudioError(f"mix weights must be finite and ≥ 0, got {list(weights)}")
    if sum(weights) == 0:
        raise FaceStudioError("mix weights are all zero; give at least one positive weight")


def _check_steps(value, name: str, top: int | None, minimum: int = 1) -> None:
    if not _is_int(value) or value < minimum:
        raise FaceStudioError(f"{name} must be a whole number ≥ {minimum}, got {value}")
    if top is not None and value > top:
        raise FaceStudioError(
            f"{name} {value} is more than the scheduler's {top} training timesteps; use at most "
            f"{top} (25–50 is usual)"
        )


def _box(index: int, values) -> list[float]:
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError):
        raise FaceStudioError(f"region {index} is not four numbers x0,y0,x1,y1") from None
    if len(box) != 4:
        raise FaceStudioError(f"region {index} has {len(box)} numbers; give x0,y0,x1,y1 in pixels")
    if not all(math.isfinite(v) for v in box):
        raise FaceStudioError(f"region {index} has a non-finite number: {box}")
    return box


def _is_single(value) -> bool:
    if isinstance(value, str | os.PathLike | bytes | Upload | Image.Image):
        return True
    return _is_array(value) and len(value.shape) in (1, 3)


def _is_array(value) -> bool:
    """A NumPy array or a torch tensor (recognised without importing torch)."""
    if isinstance(value, np.ndarray):
        return True
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "shape")


def _numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return value.detach().float().cpu().numpy()


def _is_masks(regions) -> bool:
    if _is_array(regions):
        return len(regions.shape) == 3
    return (
        isinstance(regions, list | tuple) and bool(regions) and isinstance(regions[0], Image.Image)
    )


def _mask_count(regions) -> int:
    return regions.shape[0] if _is_array(regions) else len(regions)


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


# -- form fields ----------------------------------------------------------------------------------

_INT_FIELDS = (
    "width",
    "height",
    "num_inference_steps",
    "prior_num_inference_steps",
    "seed",
    "num_images",
    "face_index",
)
_FLOAT_FIELDS = (
    "strength",
    "style_guidance_scale",
    "face_guidance_scale",
    "prior_guidance_scale",
    "alpha",
)
_FILE_FIELDS = ("people", "style_image", "image")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _fields_from_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(GenerationRequest)} - set(_FILE_FIELDS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise FaceStudioError(
            f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for name, raw in data.items():
        value = raw.strip() if isinstance(raw, str) else raw
        if value is None or value == "":
            continue
        values[name] = _parse_field(name, value)
    return values


def _parse_field(name: str, value):
    if not isinstance(value, str):
        return value
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise FaceStudioError(f"{name} must be a whole number, got '{value}'") from None
    if name in _FLOAT_FIELDS:
        try:
            return float(value)
        except ValueError:
            raise FaceStudioError(f"{name} must be a number, got '{value}'") from None
    if name == "mix_weights":
        try:
            return [float(v) for v in value.replace(",", " ").split()]
        except ValueError:
            raise FaceStudioError(
                f"mix_weights must be numbers like '0.7,0.3', got '{value}'"
            ) from None
    if name == "regions":
        return parse_regions(value)
    if name == "auto_crop":
        if value.lower() not in _TRUE + _FALSE:
            raise FaceStudioError(f"auto_crop must be true or false, got '{value}'")
        return value.lower() in _TRUE
    return value


def _files_from_mapping(files: Mapping[str, Sequence[Upload]]) -> dict[str, Any]:
    people: dict[int, list[Upload]] = {}
    single: dict[str, Upload] = {}
    for key, uploads in files.items():
        uploads = [u for u in uploads if u is not None]
        if key.startswith("person_") and key[len("person_") :].isdigit():
            if uploads:
                people[int(key[len("person_") :])] = list(uploads)
        elif key in ("style_image", "image"):
            if len(uploads) > 1:
                raise FaceStudioError(f"give one {key.replace('_', ' ')}, got {len(uploads)}")
            if uploads:
                single[key] = uploads[0]
        else:
            raise FaceStudioError(
                f"unknown file field '{key}'; use person_0, person_1, ..., style_image, image"
            )
    order = sorted(people)
    if order != list(range(len(order))):
        raise FaceStudioError(
            f"photos were given for people {order}; number them from person_0 without gaps"
        )
    total = sum(len(u.data) for u in [*single.values(), *(x for p in people.values() for x in p)])
    if total > limits.MAX_REQUEST_BYTES:
        raise FaceStudioError(
            f"the uploads total {total / 2**20:.0f} MiB; at most "
            f"{limits.MAX_REQUEST_BYTES // 2**20} MiB per request"
        )
    return {"people": [people[i] for i in order], **single}
