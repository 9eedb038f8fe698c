"""Reading an HTTP multipart body into memory: form fields and uploaded files, with limits.

Starlette's own form parser spools files over 1 MiB to a temporary file on disk; uploaded
photos must never reach the disk, so the body is parsed here with a parser whose spool never
rolls over (the whole request is capped at `limits.MAX_REQUEST_BYTES` first). Sizes over the
limits raise `PayloadTooLargeError` (HTTP 413) as soon as they are seen, before the rest of
the body is read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from facestudio.app.messages import quote
from facestudio.errors import FaceStudioError
from facestudio.pipeline import limits
from facestudio.pipeline.request import Upload

FORM_OVERHEAD_BYTES = 1024 * 1024
"""Room for the form's text fields and multipart boundaries on top of the images' bytes."""

MAX_FILES = limits.MAX_PEOPLE * limits.MAX_PHOTOS_PER_PERSON + 2  # + style and content image
MAX_FIELDS = 64
MAX_FIELD_BYTES = 64 * 1024


PERSON_FIELD = re.compile(r"person_(0|[1-9][0-9]*)")
FILE_FIELDS = ("style_image", "image")


class PayloadTooLargeError(FaceStudioError):
    """A request or one of its files is over the upload limits (HTTP 413)."""


class MalformedBodyError(FaceStudioError):
    """A body that is not a whole multipart form (HTTP 400)."""


class _InMemoryParser(MultiPartParser):
    """Starlette's parser, never spooling to disk, and noting whether the body was whole."""

    spool_max_size = limits.MAX_REQUEST_BYTES + FORM_OVERHEAD_BYTES  # never rolls over to disk
    whole = False

    def on_end(self) -> None:  # called on the closing boundary only
        self.whole = True


def max_body_bytes() -> int:
    """The largest multipart body a generation request may send."""
    return limits.MAX_REQUEST_BYTES + FORM_OVERHEAD_BYTES


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, list[Upload]]]:
    """Text fields (each given once) and files (by field name, in order) of a multipart body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise MalformedBodyError(
            "send the request as multipart/form-data (curl -F), not "
            f"'{quote(content_type or 'nothing')}'"
        )
    budget = max_body_bytes()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > budget:
        raise PayloadTooLargeError(_too_large_request(int(declared)))
    parser = _InMemoryParser(
        request.headers,
        _capped(request.stream(), budget),
        max_files=MAX_FILES,
        max_fields=MAX_FIELDS,
        max_part_size=MAX_FIELD_BYTES,
    )
    form = await _parse(parser)
    try:
        return await _fields_and_files(form.multi_items())
    finally:
        await form.close()


async def _parse(parser: _InMemoryParser):
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        reason = str(exc.__cause__ or exc.message)
        if exc.message.startswith(("Too many", "Part exceeded")) or "Maximum header" in reason:
            raise PayloadTooLargeError(f"the form is too large: {reason}") from None
        raise MalformedBodyError(f"the multipart body is malformed: {reason}") from None
    if not parser.whole or not form.multi_items():
        await form.close()
        raise MalformedBodyError(
            "the multipart body is empty or ends before its closing boundary (cut off in "
            "transit?); send the whole form"
        )
    return form


async def _fields_and_files(items) -> tuple[dict[str, str], dict[str, list[Upload]]]:
    fields: dict[str, str] = {}
    files: dict[str, list[Upload]] = {}
    for name, value in items:
        if isinstance(value, UploadFile):
            files.setdefault(_file_field(name), []).append(await _upload(value))
        elif name in fields:
            raise FaceStudioError(f"field '{quote(name)}' was given twice; give it once")
        else:
            fields[name] = value
    return fields, files


def _file_field(name: str) -> str:
    """`name` if it is exactly a file field's name; a one-line refusal if it only looks like
    one (`person_00`, `Person_0`, `person_٠`: which person would it be?) or is unknown."""
    if PERSON_FIELD.fullmatch(name) or name in FILE_FIELDS:
        return name
    folded = unicodedata.normalize("NFKC", name).strip().lower()
    if folded.startswith("person_") or folded in FILE_FIELDS:
        raise FaceStudioError(
            f"file field '{quote(name)}' is ambiguous: name people exactly person_0, "
            "person_1, ... (ASCII digits, no leading zeros)"
        )
    raise FaceStudioError(
        f"unknown file field '{quote(name)}'; use person_0, person_1, ..., style_image, image"
    )


def upload_bytes(files: dict[str, list[Upload]]) -> int:
    """Bytes of a request's uploads: what its job holds while it waits."""
    return sum(len(upload.data) for uploads in files.values() for upload in uploads)


async def _upload(file: UploadFile) -> Upload:
    name = file.filename or "upload"
    if file.size is not None and file.size > limits.MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError(
            f"'{quote(name)}' is {_size(file.size)}; at most {_size(limits.MAX_UPLOAD_BYTES)} "
            "per image"
        )
    return Upload(name, await file.read())


async def _capped(stream: AsyncIterator[bytes], budget: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > budget:
            raise PayloadTooLargeError(_too_large_request(seen))
        yield chunk


def _too_large_request(size: int) -> str:
    return (
        f"the request is {_size(size)} or more; at most {_size(limits.MAX_REQUEST_BYTES)} of "
        "images per request"
    )


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**10:.1f} KiB" if count >= 2**10 else f"{count} bytes"
