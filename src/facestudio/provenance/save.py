"""Saving a generated image with all its provenance: label and settings, content credentials.

Every front end saves through here (the CLI, the server's downloads, `out.save(i, path)`), so
every saved file carries the same things. The watermark is already in the pixels: the
pipeline embeds it when it makes the image.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.outputs import check_output_path, encode_png, write_bytes_atomic
from facestudio.provenance.credentials import SigningConfig, sign_png
from facestudio.provenance.metadata import label_image, png_text, read_settings


def provenance_png(
    image: Image.Image,
    metadata: dict | None = None,
    name: str = "image.png",
    signing: SigningConfig | None = None,
    credentials: bool = True,
) -> bytes:
    """PNG bytes of a generated image: label and settings as text, signed C2PA credentials.

    `metadata` defaults to the settings the pipeline attached to the image. `signing`
    defaults to the configured key (see `facestudio.provenance.credentials`).
    """
    metadata = metadata if metadata is not None else read_settings(image)
    if not metadata or not metadata.get("generated"):
        raise FaceStudioError(
            "this image carries no FaceStudio settings; pass the metadata the pipeline returned"
        )
    # A copy labelled with exactly these settings (an image's own label would win in PIL).
    data = encode_png(label_image(image.copy(), metadata), png_text(metadata))
    return sign_png(data, metadata, name, signing) if credentials else data


def save_image(
    image: Image.Image,
    path: str | os.PathLike,
    metadata: dict | None = None,
    force: bool = False,
    signing: SigningConfig | None = None,
) -> Path:
    """Write a generated image as a PNG with its label, settings and content credentials.

    Refuses to replace an existing file unless `force`; writes atomically (all or nothing).
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise FaceStudioError(
            f"'{path}' must end in .png: the settings and credentials are stored in the PNG"
        )
    path = check_output_path(path, force)
    write_bytes_atomic(path, provenance_png(image, metadata, path.name, signing))
    return path
