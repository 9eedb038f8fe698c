"""Where training photos come from: image folders, WebDataset tar shards, or manifest files.

Every source lists its items in a fixed order (sorted), so preparation is deterministic and
its sharding is the same on every run and in every process.

Bounds, so that a hostile or broken source fails in one line instead of exhausting memory or
hanging: a source, a manifest and every path a manifest names must be a regular file (a FIFO
blocks a reader forever; /dev/zero never ends). A tar shard is indexed once, from its headers
(linear in its members); each photo is then read by seeking to its data, and a member larger
than `images.max_file_bytes` is refused from its header size without being read. Shards must
be plain (uncompressed) tar, as WebDataset writes them: a compressed stream cannot be read at
an offset, so every photo would re-decompress the shard up to it.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from facestudio.errors import FaceStudioError, ImageLoadError
from facestudio.files import kind_of
from facestudio.images import ImageLoadConfig, max_file_bytes, read_image_file
from facestudio.structured_files import parse_structured

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".pgm", ".ppm", ".tif", ".tiff"}
MANIFEST_SUFFIXES = (".txt", ".json", ".jsonl")
MANIFEST_MAX_BYTES = 512 * 1024 * 1024
"""A manifest's bound: a path and a person id per line is ~100 bytes, so millions of photos."""

_COMPRESSED = {
    b"\x1f\x8b": ("gzip", "gunzip -c"),
    b"BZh": ("bzip2", "bzip2 -dc"),
    b"\xfd7zXZ\x00": ("xz", "xz -dc"),
    b"\x28\xb5\x2f\xfd": ("zstd", "zstd -dc"),
}


@dataclass(frozen=True)
class SourceItem:
    """One photo: a stable key, and either a file path or a member of a tar shard (where its
    data starts in the shard, and how many bytes it has)."""

    key: str
    path: str
    member: str | None = None
    offset: int = 0
    size: int = 0
    person: str = ""  # who the photo shows, when a manifest says (`{"path", "person"}` entries)

    def read(self, config: ImageLoadConfig | None = None) -> bytes:
        """The photo's bytes; `ImageLoadError` for a file that must not or cannot be read."""
        config = config or ImageLoadConfig()
        if self.member is None:
            return read_image_file(self.path, config, name=self.key)
        if self.size > max_file_bytes(config):
            raise ImageLoadError(
                f"cannot read '{self.key}': the member is {self.size / 1e6:.0f} MB, over the "
                f"{max_file_bytes(config) / 1e6:.0f} MB limit for one image"
            )
        try:
            with _open_regular(self.path) as shard:
                shard.seek(self.offset)
                data = shard.read(self.size)
        except OSError as exc:
            raise ImageLoadError(f"cannot read '{self.key}': {exc}") from None
        if len(data) != self.size:
            raise ImageLoadError(f"cannot read '{self.key}': the shard is truncated")
        return data


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
    try:
        mode = source.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FaceStudioError(f"source '{source}' does not exist") from None
    except OSError as exc:
        raise FaceStudioError(f"cannot read source '{source}': {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        files = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        for path in files:
            yield SourceItem(f"{source.name}/{path.relative_to(source).as_posix()}", str(path))
        return
    if source.suffix not in (".tar", *MANIFEST_SUFFIXES):
        raise FaceStudioError(
            f"source '{source}' is not a folder, a .tar shard or a manifest (.txt, .json, .jsonl)"
        )
    if not stat.S_ISREG(mode):
        raise FaceStudioError(
            f"source '{source}' is {kind_of(mode)}; give a regular file (or a folder)"
        )
    if source.suffix == ".tar":
        yield from _tar_items(source)
        return
    for path, person in _manifest_entries(source):
        resolved = path if path.is_absolute() else source.parent / path
        _check_listed_file(resolved, source)
        yield SourceItem(f"{source.name}/{path.as_posix()}", str(resolved), person=person)


def _tar_items(source: Path) -> Iterator[SourceItem]:
    """The image members of a plain tar, by name, from one pass over its headers."""
    with _open_regular(source) as file:
        magic = file.read(6)
        file.seek(0)
        _refuse_compressed(source, magic)
        members: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(fileobj=file, mode="r:") as archive:
                for member in archive:  # headers only: the data is skipped by seeking
                    if member.isfile() and not member.issparse():
                        members[member.name] = (member.offset_data, member.size)  # last wins
        except tarfile.TarError as exc:
            raise FaceStudioError(f"cannot read shard '{source}': {exc}") from None
    for name in sorted(members):
        if Path(name).suffix.lower() in IMAGE_SUFFIXES:
            offset, size = members[name]
            yield SourceItem(f"{source.name}/{name}", str(source), name, offset, size)


def _refuse_compressed(source: Path, magic: bytes) -> None:
    for prefix, (name, command) in _COMPRESSED.items():
        if magic.startswith(prefix):
            raise FaceStudioError(
                f"shard '{source}' is {name}-compressed; shards must be plain tar (the photos "
                f"in them are compressed already): decompress it with `{command} "
                f"'{source}' > plain.tar`"
            )


def _check_listed_file(path: Path, manifest: Path) -> None:
    """A path a manifest lists must be a regular file; a missing one is skipped later (and
    counted as unreadable) like any photo that cannot be read."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise FaceStudioError(f"manifest '{manifest}' lists '{path}': {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise FaceStudioError(
            f"manifest '{manifest}' lists '{path}', which is {kind_of(mode)}, not an image "
            "file; remove that line"
        )


def _manifest_entries(manifest: Path) -> list[tuple[Path, str]]:
    """`(path, person)` per listed image; the person is "" where the manifest does not say."""
    try:
        with _open_regular(manifest) as file:
            size = os.fstat(file.fileno()).st_size
            if size > MANIFEST_MAX_BYTES:
                raise FaceStudioError(
                    f"manifest '{manifest}' is {size:,} bytes, over the {MANIFEST_MAX_BYTES:,} "
                    "limit; split it into several manifests"
                )
            text = file.read(MANIFEST_MAX_BYTES + 1).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FaceStudioError(
            f"manifest '{manifest}' is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        if manifest.suffix == ".txt":
            entries = [
                (line.strip(), "")
                for line in text.splitlines()
                if line.strip() and not line.startswith("#")
            ]
        elif manifest.suffix == ".jsonl":
            entries = [
                _entry(parse_structured(line, "JSON", f"line {number} of manifest '{manifest}'"))
                for number, line in enumerate(text.splitlines(), 1)
                if line.strip()
            ]
        else:
            data = parse_structured(text, "JSON", f"manifest '{manifest}'", MANIFEST_MAX_BYTES)
            data = data.get("images", data) if isinstance(data, dict) else data
            entries = [_entry(entry) for entry in data]
    except (KeyError, TypeError, AttributeError) as exc:
        raise FaceStudioError(
            f"manifest '{manifest}' is not a list of image paths ({exc})"
        ) from None
    if any("\0" in path for path, _ in entries):
        raise FaceStudioError(f"manifest '{manifest}' has a path with a NUL character")
    return [(Path(path), person) for path, person in entries]


def _entry(entry) -> tuple[str, str]:
    person = ""
    if not isinstance(entry, str):
        entry, person = entry["path"], entry.get("person", "")
    if not isinstance(entry, str):
        raise TypeError(f"a path must be a string, got {entry!r}")
    if not isinstance(person, str):
        raise TypeError(f"a person must be a string, got {person!r}")
    return entry, person


def _open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading, non-blocking so that a FIFO swapped in since it was listed
    cannot hang, and checked to still be a regular file."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise OSError(f"'{path}' is {kind_of(mode)}, not a regular file")
    return os.fdopen(handle, "rb")
