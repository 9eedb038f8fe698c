"""The settings a generated image carries, and the one place their keys are spelled.

Every saved image says, in plain words, that it is generated, and holds its settings as JSON
in the PNG text chunk `facestudio` (and, for formats without PNG text, in EXIF
`ImageDescription`/`Software`). Metadata names files by their name only: `names_only` strips
folders from every string, so no absolute path of a user's photo or model ever leaves the
machine inside an image.
"""

from __future__ import annotations

import json
import re
from typing import Any

from PIL import Image, PngImagePlugin

from facestudio import __version__
from facestudio.errors import FaceStudioError
from facestudio.images import ImageHeader, image_header
from facestudio.structured_files import parse_structured

GENERATOR = f"FaceStudio {__version__}"
SOFTWARE_KEY = "Software"
DESCRIPTION_KEY = "Description"
SETTINGS_KEY = "facestudio"
DESCRIPTION = "AI-generated image (FaceStudio); not a photograph"
EXIF_IMAGE_DESCRIPTION = 0x010E
EXIF_SOFTWARE = 0x0131

_QUOTED_PATH = re.compile(r"'[^'\n]*[/\\]([^'/\\\n]+)'")
"""A path in quotes (it may hold spaces), as error and warning messages quote them."""
_PATH = re.compile(
    r"(?<![\w.~])(?:[A-Za-z]:\\|\\\\|~/|/)"  # a POSIX root or a home, a Windows drive or share
    r"(?:[^\s'\"/\\]+[/\\])*"  # the folders
)


def names_only(value: Any) -> Any:
    """`value` with the folders removed from every path inside its strings (recursively)."""
    if isinstance(value, str):
        return _PATH.sub("", _QUOTED_PATH.sub(r"'\1'", value))
    if isinstance(value, dict):
        return {key: names_only(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [names_only(item) for item in value]
    return value


def image_metadata(settings: dict, seed: int | None, index: int) -> dict:
    """The metadata of image `index` of a call: the generated flag, the generator, the seed."""
    return names_only(
        {"generated": True, "generator": GENERATOR, "seed": seed, "index": index, **settings}
    )


def png_text(metadata: dict) -> dict[str, str]:
    """PNG text chunks: a plain statement that the image is generated, and every setting."""
    return {
        SOFTWARE_KEY: GENERATOR,
        DESCRIPTION_KEY: DESCRIPTION,
        SETTINGS_KEY: json.dumps(names_only(metadata), sort_keys=True),
    }


MAX_SETTINGS_BYTES = 1024 * 1024
"""Bound of the settings JSON read from an image: ours are a few kB."""


def read_settings(image: Image.Image) -> dict | None:
    """The settings stored in an opened image (PNG text or EXIF), or None when it has none
    or they cannot be read."""
    text = settings_text(image_header(image))
    if text is None:
        return None
    try:
        return parse_settings(text)
    except FaceStudioError:
        return None


def settings_text(header: ImageHeader) -> str | None:
    """The settings JSON as an image's header stores it (PNG text chunk, else EXIF
    ImageDescription after the label), or None."""
    text = header.text.get(SETTINGS_KEY)
    if text is None:
        description = header.exif_text.get(EXIF_IMAGE_DESCRIPTION, "")
        text = description.partition("\n")[2] if description.startswith(DESCRIPTION) else None
    return text or None


def parse_settings(text: str) -> dict:
    """Settings JSON through the bounded reader; one-line `FaceStudioError` when it is not a
    JSON object within the bounds."""
    settings = parse_structured(text, "JSON", "the settings JSON in the image", MAX_SETTINGS_BYTES)
    if not isinstance(settings, dict):
        raise FaceStudioError("the settings in the image are not a JSON object")
    return settings


def is_facestudio_settings(settings: object) -> bool:
    """Whether `settings` say FaceStudio generated the image: `generated` is true and the
    generator is FaceStudio (another tool's settings, or a wrong type, are no claim of ours)."""
    if not isinstance(settings, dict) or settings.get("generated") is not True:
        return False
    generator = settings.get("generator")
    return isinstance(generator, str) and generator.startswith("FaceStudio")


def label_image(image: Image.Image, metadata: dict) -> Image.Image:
    """Attach the label and settings to an in-memory image, so that a plain
    `image.save("x.png")` (or .jpg/.webp: EXIF) writes them too.

    Pillow's writers take their options from `image.encoderinfo` as well as from `save()`'s
    arguments (and the image's own win), so the label cannot be dropped by accident.
    """
    text = png_text(metadata)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    exif = Image.Exif()
    exif[EXIF_IMAGE_DESCRIPTION] = f"{DESCRIPTION}\n{text[SETTINGS_KEY]}"
    exif[EXIF_SOFTWARE] = GENERATOR
    image.info.update(text)
    image.encoderinfo = {"pnginfo": info, "exif": exif.tobytes()}
    return image
