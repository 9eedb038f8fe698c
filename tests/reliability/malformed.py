"""Makers of malformed files: images that trip Pillow's decoders, and settings files nested or
numbered past any sane bound. Each is built from bytes, so the tests need nothing on disk."""

from __future__ import annotations

import io
import json
import struct
import zlib

from PIL import Image, PngImagePlugin

DEEP = 100_000
"""The nesting depth of the deep cases (the issue's number)."""
LONG = 5000
"""The digits of the long-number cases (the issue's number): over Python's 4300-digit limit."""


def chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(
    width: int = 64, height: int = 64, before: tuple = (), after: tuple = (), pixels: bool = True
) -> bytes:
    """An RGB PNG with `before`/`after` chunks around its pixel data; the rows are compressed
    one at a time, so an 8000×8000 image costs a few kB of memory to make."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = _grey_rows(width, height) if pixels else zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(before)
        + chunk(b"IDAT", data)
        + b"".join(after)
        + chunk(b"IEND", b"")
    )


def _grey_rows(width: int, height: int) -> bytes:
    packer, row = zlib.compressobj(9), b"\0" + b"\x80" * (3 * width)
    return b"".join(packer.compress(row) for _ in range(height)) + packer.flush()


def oversized_text_chunk() -> bytes:
    """A zTXt chunk of 2 kB that inflates to 2 MB, over Pillow's 1 MB text limit."""
    return chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * (2 * 1024 * 1024)))


def text_chunk(key: str, text: str) -> bytes:
    """An uncompressed iTXt chunk (how FaceStudio stores its settings)."""
    return chunk(b"iTXt", key.encode() + b"\0\0\0\0\0" + text.encode())


def settings_png(text: str, width: int = 64, height: int = 64) -> bytes:
    """A PNG whose FaceStudio settings chunk holds `text`."""
    return png(width, height, before=(text_chunk("facestudio", text),))


def webp_with_exif(exif: bytes) -> bytes:
    """A WebP holding `exif` as its EXIF block (garbage makes Pillow raise SyntaxError)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "grey").save(buffer, "WEBP", exif=exif)
    return buffer.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    """A PNG whose header declares side×side pixels (400 MP), over Pillow's hard bomb limit."""
    return png(side, side, pixels=False)


def icns_hiding(inner: bytes) -> bytes:
    """An ICNS icon whose 1024-px slot holds `inner`: Pillow opens it at load, not at open."""
    entry = b"ic10" + struct.pack(">I", 8 + len(inner)) + inner
    return b"icns" + struct.pack(">I", 8 + len(entry)) + entry


def gif_growing_to(side: int) -> bytes:
    """A 64×64 GIF whose first frame declares side×side pixels."""
    screen = struct.pack("<HHBBB", 64, 64, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, side, side, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + frame + b";"


def png_with_exif_description(value) -> bytes:
    """A PNG whose EXIF ImageDescription is `value` (bytes are stored as UNDEFINED)."""
    exif = Image.Exif()
    exif[0x010E] = value
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    Image.new("RGB", (64, 64), "grey").save(buffer, "PNG", exif=exif.tobytes(), pnginfo=info)
    return buffer.getvalue()


def deep(kind: str, depth: int = DEEP) -> str:
    """A document nested `depth` deep (lists), as `kind` writes it."""
    if kind == "JSON":
        return '{"a": ' + "[" * depth + "]" * depth + "}"
    if kind == "TOML":
        return "a = " + "[" * depth + "]" * depth + "\n"
    if kind == "YAML flow":
        return "a: " + "[" * depth + "]" * depth + "\n"
    return "a:\n" + "- " * depth + "x\n"  # YAML block sequences


def long_number(kind: str, digits: int = LONG) -> str:
    """A document whose one value is a whole number of `digits` digits."""
    number = "1" * digits
    return {"JSON": f'{{"seed": {number}}}', "TOML": f"seed = {number}\n"}.get(
        kind, f"seed: {number}\n"
    )


def json_text(value) -> str:
    return json.dumps(value)
