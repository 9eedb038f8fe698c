"""Checkpoint folders: written under a temporary name and renamed when complete, so a crash
or a full disk mid-save never damages the last good checkpoint."""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from facestudio.errors import FaceStudioError

_NAME = re.compile(r"^checkpoint-(\d{8})$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of unfinished saves are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.is_dir() and _NAME.match(p.name) and (p / "trainer_state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def temporary_folder(folder: Path, step: int) -> Path:
    temporary = folder / f".{checkpoint_name(step)}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    return temporary


def publish(temporary: Path, step: int, keep_last: int) -> Path:
    """Rename a fully written checkpoint into place, then drop the oldest beyond `keep_last`."""
    final = temporary.parent / checkpoint_name(step)
    if final.exists():
        shutil.rmtree(final)
    temporary.rename(final)
    for old in list_checkpoints(temporary.parent)[
        : max(0, len(list_checkpoints(temporary.parent)) - keep_last)
    ]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in temporary.parent.glob(".checkpoint-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def save_failed(temporary: Path, step: int, error: OSError) -> FaceStudioError:
    """Clean up after a failed save and explain it; the previous checkpoint is untouched."""
    shutil.rmtree(temporary, ignore_errors=True)
    previous = latest_checkpoint(temporary.parent)
    kept = (
        f"the last checkpoint, {previous.name}, is intact"
        if previous
        else "no earlier checkpoint exists"
    )
    if error.errno == errno.ENOSPC:
        return FaceStudioError(
            f"no space left on the device while saving checkpoint {step} in '{temporary.parent}'; "
            f"{kept}; free some space and run again to resume"
        )
    return FaceStudioError(f"saving checkpoint {step} failed ({error.strerror or error}); {kept}")
