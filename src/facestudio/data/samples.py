"""The prepared-sample schema: what one reconstruction sample is, and how a shard stores it.

A prepared folder holds `index.json` and WebDataset tar shards. Each sample is a set of tar
members `{key}.{member}` sharing a nine-digit key (the photo's position in the sorted source
list); keys are sorted within and across shards. This module is the only place that knows the
member names and their encodings: `prepare` writes through `encode_sample`/`add_sample`,
training and the recipes read through `shard_members`/`decode_sample`.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.structured_files import quote, read_structured_file

FORMAT = "facestudio-reconstruction-v1"
INDEX = "index.json"

IMAGE = "image.jpg"  # the face-centred portrait, RGB JPEG
STYLE = "style.jpg"  # the portrait with the face box greyed: the style input
FACE_CROP = "face.png"  # the 112×112 ArcFace-aligned face
MASK = "mask.png"  # the person region, 8-bit
EMBEDDING = "embedding.npy"  # the identity embedding, float32 .npy (absent without a face)
META = "json"  # source, face box and landmarks in portrait pixels, person box, photo size, person id

TRAINING_MEMBERS = (IMAGE, STYLE, EMBEDDING, META)
"""What training reads of a sample (the crop and mask are for other uses)."""


@dataclass
class PreparedSample:
    """One sample, decoded. An image given as bytes is stored as is (its JPEG kept bit-exact)."""

    image: np.ndarray | bytes  # (R, R, 3) uint8
    style: np.ndarray | bytes  # (R, R, 3) uint8
    meta: dict
    embedding: np.ndarray | None = None  # (D,) float32; None: no face in the photo
    face_crop: np.ndarray | None = None  # (112, 112, 3) uint8
    mask: np.ndarray | None = None  # (R, R) uint8

    @property
    def has_face(self) -> bool:
        return self.embedding is not None


def sample_key(position: int) -> str:
    """The key of the sample made from the photo at `position` of the sorted sources."""
    return f"{position:09d}"


def encode_sample(sample: PreparedSample, jpeg_quality: int = 95) -> dict[str, bytes]:
    """The members of `sample`, by member name (absent parts have no member)."""
    files = {IMAGE: _jpeg(sample.image, jpeg_quality), STYLE: _jpeg(sample.style, jpeg_quality)}
    if sample.face_crop is not None:
        files[FACE_CROP] = _png(sample.face_crop)
    if sample.mask is not None:
        files[MASK] = _png(sample.mask)
    if sample.embedding is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(sample.embedding, np.float32), allow_pickle=False)
        files[EMBEDDING] = buffer.getvalue()
    files[META] = json.dumps(sample.meta).encode()
    return files


def decode_sample(files: Mapping[str, bytes]) -> PreparedSample:
    """A sample from its members; parts whose member is not in `files` are left None."""
    image, style = (_picture(files[m]) if m in files else None for m in (IMAGE, STYLE))
    embedding = None
    if EMBEDDING in files:
        embedding = np.load(io.BytesIO(files[EMBEDDING]), allow_pickle=False).astype(np.float32)
    return PreparedSample(
        image=image,
        style=style,
        meta=json.loads(files[META]) if META in files else {},
        embedding=embedding,
        face_crop=_picture(files[FACE_CROP]) if FACE_CROP in files else None,
        mask=np.asarray(Image.open(io.BytesIO(files[MASK]))) if MASK in files else None,
    )


def add_sample(archive: tarfile.TarFile, key: str, files: Mapping[str, bytes]) -> None:
    """Append a sample's members to an open shard (mtime 0: byte-identical shards)."""
    for member, data in files.items():
        info = tarfile.TarInfo(f"{key}.{member}")
        info.size = len(data)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(data))


def shard_members(path: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """`{key: {member: (offset, size)}}` of a shard, keys sorted: where each member's bytes are."""
    members: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(path) as archive:
        for info in archive:
            key, _, member = info.name.partition(".")
            members.setdefault(key, {})[member] = (info.offset_data, info.size)
    return {key: members[key] for key in sorted(members)}


def read_members(path: Path, where: Mapping[str, tuple[int, int]], names=TRAINING_MEMBERS) -> dict:
    """The bytes of the members `names` (those present) of one sample of shard `path`."""
    files = {}
    with open(path, "rb") as handle:
        for name in names:
            if name in where:
                offset, size = where[name]
                handle.seek(offset)
                files[name] = handle.read(size)
    return files


MAX_INDEX_BYTES = 64 * 1024 * 1024
"""An index lists one line per shard: 64 MiB is a million shards."""


def read_index(folder: Path) -> dict:
    """A prepared folder's index.json (shards, sample counts, prepare settings, embedding size),
    through the bounded reader."""
    path = Path(folder) / INDEX
    if not path.is_file():
        raise FaceStudioError(f"{quote(folder)} has no {INDEX}; run facestudio prepare first")
    index = read_structured_file(path, "prepared data index", "JSON", MAX_INDEX_BYTES)
    if not isinstance(index, dict):
        raise FaceStudioError(f"{quote(path)} is not a prepared data index; run facestudio prepare")
    return index


def jpeg_bytes(array: np.ndarray, quality: int) -> bytes:
    """An RGB array as a prepared sample stores it (JPEG)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _jpeg(image: np.ndarray | bytes, quality: int) -> bytes:
    return image if isinstance(image, bytes) else jpeg_bytes(image, quality)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _picture(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
