"""A `GenerationRequest` as bytes, so that a job can wait in Redis and run on another machine.

The front ends build requests from form fields and uploaded files, so a queued request holds
only plain values (text, numbers, lists of them) and `Upload`s. It travels as one blob: a
magic tag, the length of a JSON header, the header (the request's fields, each upload replaced
by its index), then the uploads' bytes one after the other. Anything else (a numpy embedding,
a file path, a PIL image: what only the Python API can pass) is refused, since it would mean
something else, or nothing, on the worker's machine.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

from facestudio.errors import FaceStudioError
from facestudio.pipeline.request import GenerationRequest, Upload

MAGIC = b"FSJ1"
_LENGTH = struct.Struct(">I")
_UPLOAD_KEY = "__upload__"


class UnqueueableRequestError(FaceStudioError):
    """A request holding something other than plain values and uploaded images."""


def encode_request(request: GenerationRequest) -> bytes:
    """The request as one blob (see the module's docstring)."""
    uploads: list[Upload] = []
    fields = {
        field.name: _plain(getattr(request, field.name), field.name, uploads)
        for field in dataclasses.fields(request)
    }
    header = json.dumps(
        {"fields": fields, "uploads": [[u.name, len(u.data)] for u in uploads]},
        separators=(",", ":"),
    ).encode()
    return b"".join([MAGIC, _LENGTH.pack(len(header)), header, *(u.data for u in uploads)])


def decode_request(blob: bytes) -> GenerationRequest:
    """The request `encode_request` made; a damaged blob is refused in one line."""
    try:
        if not blob.startswith(MAGIC):
            raise ValueError("no magic tag")
        (length,) = _LENGTH.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + _LENGTH.size
        header = json.loads(blob[start : start + length])
        offset = start + length
        uploads = []
        for name, size in header["uploads"]:
            uploads.append(Upload(str(name), bytes(blob[offset : offset + size])))
            offset += size
        if offset != len(blob):
            raise ValueError("wrong length")
        fields = {name: _restore(value, uploads) for name, value in header["fields"].items()}
        return GenerationRequest(**fields)
    except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise FaceStudioError(
            f"the queued job's inputs are damaged ({exc}); submit it again"
        ) from None


def _plain(value: Any, where: str, uploads: list[Upload]) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Upload):
        uploads.append(value)
        return {_UPLOAD_KEY: len(uploads) - 1}
    if isinstance(value, list | tuple):
        return [_plain(item, where, uploads) for item in value]
    raise UnqueueableRequestError(
        f"{where}: a queued job takes uploaded images and plain values, not "
        f"{type(value).__name__}; run it in-process (FaceStudioPipeline) instead"
    )


def _restore(value: Any, uploads: list[Upload]) -> Any:
    if isinstance(value, dict):
        return uploads[value[_UPLOAD_KEY]]
    if isinstance(value, list):
        return [_restore(item, uploads) for item in value]
    return value
