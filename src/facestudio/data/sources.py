"""Where training photos come from: image folders, WebDataset tar shards, or manifest files.

Every source lists its items in a fixed order (sorted), so preparation is deterministic and
its sharding is the same on every run and in every process.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facestudio.errors import FaceStudioError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".pgm", ".ppm", ".tif", ".tiff"}


@dataclass(frozen=True)
class SourceItem:
    """One photo: a stable key, and either a file path or a member of a tar shard."""

    key: str
    path: str
    member: str | None = None

    def read(self) -> bytes:
        if self.member is None:
            return Path(self.path).read_bytes()
        with tarfile.open(self.path) as archive:
            handle = archive.extractfile(self.member)
            if handle is None:
                raise OSError(f"'{self.member}' in '{self.path}' is not a file")
            return handle.read()


def list_items(sources: list[str]) -> list[SourceItem]:
    """All photos of all sources, in a deterministic order, without duplicates of a key."""
    items: list[SourceItem] = []
    for source in sources:
        items.extend(_items_of(Path(source)))
    seen, unique = set(), []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            unique.append(item)
    return unique


def _items_of(source: Path) -> Iterator[SourceItem]:
    if not source.exists():
        raise FaceStudioError(f"source '{source}' does not exist")
    if source.is_dir():
        files = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        for path in files:
            yield SourceItem(f"{source.name}/{path.relative_to(source).as_posix()}", str(path))
    elif source.suffix == ".tar":
        try:
            with tarfile.open(source) as archive:
                names = sorted(m.name for m in archive.getmembers() if m.isfile())
        except tarfile.TarError as exc:
            raise FaceStudioError(f"cannot read shard '{source}': {exc}") from None
        for name in names:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield SourceItem(f"{source.name}/{name}", str(source), name)
    elif source.suffix in (".txt", ".json", ".jsonl"):
        for path in _manifest_paths(source):
            resolved = path if path.is_absolute() else source.parent / path
            yield SourceItem(f"{source.name}/{path.as_posix()}", str(resolved))
    else:
        raise FaceStudioError(
            f"source '{source}' is not a folder, a .tar shard or a manifest (.txt, .json, .jsonl)"
        )


def _manifest_paths(manifest: Path) -> list[Path]:
    text = manifest.read_text()
    try:
        if manifest.suffix == ".txt":
            entries = [
                line.strip()
                for line in text.splitlines()
                if line.strip() and not line.startswith("#")
            ]
        elif manifest.suffix == ".jsonl":
            entries = [_entry(json.loads(line)) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            data = data.get("images", data) if isinstance(data, dict) else data
            entries = [_entry(entry) for entry in data]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise FaceStudioError(
            f"manifest '{manifest}' is not a list of image paths ({exc})"
        ) from None
    return [Path(entry) for entry in entries]


def _entry(entry) -> str:
    return entry if isinstance(entry, str) else entry["path"]
