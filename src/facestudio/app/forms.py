"""Reading an HTTP multipart body into memory: form fields and uploaded files, with limits.

Starlette's own form parser spools files over 1 MiB to a temporary file on disk; uploaded
photos must never reach the disk, so the body is parsed here with a parser whose spool never
rolls over (the whole request is capped at `limits.MAX_REQUEST_BYTES` first). Sizes over the
limits raise `PayloadTooLargeError` (HTTP 413) as soon as they are seen, before the rest of
the body is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from facestudio.errors import FaceStudioError
from facestudio.pipeline import limits
from facestudio.pipeline.request import Upload

FORM_OVERHEAD_BYTES = 1024 * 1024
"""Room for the form's text fields and multipart boundaries on top of the images' bytes."""

MAX_FILES = limits.MAX_PEOPLE * limits.MAX_PHOTOS_PER_PERSON + 2  # + style and content image
MAX_FIELDS = 64
MAX_FIELD_BYTES = 64 * 1024


class PayloadTooLargeError(FaceStudioError):
    """A request or one of its files is over the upload limits (HTTP 413)."""


class _InMemoryParser(MultiPartParser):
    spool_max_size = limits.MAX_REQUEST_BYTES + FORM_OVERHEAD_BYTES  # never rolls over to disk


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, list[Upload]]]:
    """Text fields (each given once) and files (by field name, in order) of a multipart body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise FaceStudioError(
            f"send the request as multipart/form-data (curl -F), not '{content_type or 'nothing'}'"
        )
    budget = limits.MAX_REQUEST_BYTES + FORM_OVERHEAD_BYTES
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
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise FaceStudioError(f"the multipart body is malformed: {exc.message}") from None
    fields: dict[str, str] = {}
    files: dict[str, list[Upload]] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.setdefault(name, []).append(await _upload(value))
            elif name in fields:
                raise FaceStudioError(f"field '{name}' was given twice; give it once")
            else:
                fields[name] = value
    finally:
        await form.close()
    return fields, files


async def _upload(file: UploadFile) -> Upload:
    name = file.filename or "upload"
    if file.size is not None and file.size > limits.MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError(
            f"'{name}' is {_size(file.size)}; at most {_size(limits.MAX_UPLOAD_BYTES)} per image"
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
        f"the request is over {_size(size)}; at most {_size(limits.MAX_REQUEST_BYTES)} of images "
        "per request"
    )


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**10:.1f} KiB" if count >= 2**10 else f"{count} bytes"
