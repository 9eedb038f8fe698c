"""Helpers for the provenance tests: a signed PNG and a pixel edit that keeps its metadata."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def build_png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        for kind, payload in chunks
    )
    return b"\x89PNG\r\n\x1a\n" + body


def edit_pixels_keeping_metadata(data: bytes) -> bytes:
    """The PNG with one pixel changed and every other chunk (text, credentials) kept: what an
    editor that preserves metadata writes."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    pixels = np.asarray(image).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    new_data = [p for k, p in png_chunks(buffer.getvalue()) if k == b"IDAT"]
    chunks = png_chunks(data)
    first = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    kept = [c for c in chunks if c[0] != b"IDAT"]
    return build_png(kept[:first] + [(b"IDAT", p) for p in new_data] + kept[first:])
