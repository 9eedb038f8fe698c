"""Writing results: never over a user's file unless asked, never a partial file."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image, PngImagePlugin

from facestudio.errors import FaceStudioError


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an existing file (unless `force`) or a missing folder, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise FaceStudioError(f"output '{path}' is a folder; give a file name")
    if path.exists() and not force:
        raise FaceStudioError(
            f"output '{path}' already exists; choose another name or pass --force to overwrite it"
        )
    if not path.parent.exists():
        raise FaceStudioError(
            f"cannot write '{path}': folder '{path.parent}' does not exist; create it first"
        )
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see all or nothing."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private (0600); a result gets the mode any new file would.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; restored at once
    os.umask(mask)
    return mask


def encode_png(image: Image.Image, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes with `text` stored as tEXt/iTXt chunks (the settings of a generated image)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
