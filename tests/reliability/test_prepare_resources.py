"""`prepare` bounds every resource before using it: sources are regular files (a device never
ends, a FIFO never answers), tar members are size-checked from their header before a byte is
read, a tar is indexed once, and the options are checked before the face models load."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import tarfile
import tracemalloc

import pytest

from facestudio.data.sources import list_items
from facestudio.errors import FaceStudioError, ImageLoadError
from facestudio.faces import analyzer as analyzer_module
from tests.conftest import shared_file
from tests.reliability.helpers import (
    FACE,
    assert_refused,
    fifo,
    link_to_fifo,
    run,
    zero_device,
)


@pytest.fixture(autouse=True)
def _no_face_models(tmp_path, monkeypatch):
    """Every case here is refused before the face models load (building one fails the test)."""
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))

    def refuse(config):
        raise AssertionError("the face models were loaded before the input was checked")

    monkeypatch.setattr(analyzer_module, "build_backend", refuse)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(shared_file(FACE).read_bytes())
    return folder


def _prepare(capsys, tmp_path, *args):
    return run(capsys, "prepare", *args, "--out", tmp_path / "out")


def _manifest(tmp_path, line) -> str:
    (tmp_path / "list.txt").write_text(f"{line}\n")
    return str(tmp_path / "list.txt")








@pytest.mark.parametrize(
    ("make", "words"),
    [
        (zero_device, "a character device"),
        (fifo, "a FIFO"),
        (link_to_fifo, "a FIFO"),
        (lambda p: p.mkdir() or p, "a folder"),
    ],
    ids=["zero device", "FIFO", "link to a FIFO", "folder"],
)
def test_a_manifest_line_that_is_not_a_regular_file_is_refused(make, words, tmp_path, capsys):
    listed = make(tmp_path / "photo.jpg")
    result = _prepare(capsys, tmp_path, _manifest(tmp_path, listed))
    assert_refused(result, words, "list.txt")
    assert not (tmp_path / "out").exists()


def test_a_manifest_that_is_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    os.mkfifo(tmp_path / "list.txt")
    assert_refused(_prepare(capsys, tmp_path, tmp_path / "list.txt"), "a FIFO")


def test_a_shard_that_is_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    os.mkfifo(tmp_path / "shard.tar")
    assert_refused(_prepare(capsys, tmp_path, tmp_path / "shard.tar"), "a FIFO")


def test_a_non_utf8_manifest_is_one_line(tmp_path, capsys):
    (tmp_path / "list.txt").write_bytes(b"\xff\xfe photo.jpg\n")
    assert_refused(_prepare(capsys, tmp_path, tmp_path / "list.txt"), "not UTF-8")


def _sparse_tar(path, size):
    """A tar whose header says `size` bytes for one member, stored sparse (nothing written)."""
    info = tarfile.TarInfo("big.jpg")
    info.size = size
    with open(path, "wb") as file:
        file.write(info.tobuf())
        file.truncate(512 + size + 1024)
    return path


def test_a_huge_member_is_refused_from_its_header_without_reading_it(tmp_path):
    (item,) = list_items([str(_sparse_tar(tmp_path / "bomb.tar", 2**30))])
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError, match="1074 MB, over the 256 MB limit"):
            item.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize(("opener", "name"), [(gzip.open, "gzip"), (bz2.open, "bzip2")])
def test_a_compressed_shard_is_refused_before_decompressing(opener, name, tmp_path, capsys):
    """A compressed tar cannot be read at an offset: each photo would re-decompress the shard
    (and a bomb would be decompressed to find its members). Its first bytes refuse it."""
    path = tmp_path / "shard.tar"
    with opener(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo("photo.jpg")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"data"))
    assert_refused(_prepare(capsys, tmp_path, path), f"{name}-compressed", "plain.tar")


def test_a_tar_is_indexed_once_and_read_by_offset(tmp_path, monkeypatch):
    """2,000 members: one pass over the headers to list them, none to read them (the old code
    re-scanned the tar for every member: quadratic, minutes for this shard)."""
    path = tmp_path / "many.tar"
    with tarfile.open(path, "w") as archive:
        for i in range(2000):
            info = tarfile.TarInfo(f"{i:05d}.jpg")
            data = f"photo {i}".encode()
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    headers = []
    original = tarfile.TarFile.next
    monkeypatch.setattr(tarfile.TarFile, "next", lambda self: headers.append(1) or original(self))
    items = list_items([str(path)])
    listed = len(headers)
    assert [item.read() for item in items] == [f"photo {i}".encode() for i in range(2000)]
    assert listed <= 2000 + 2 and len(headers) == listed  # + opening, + the end marker


def test_a_member_swapped_for_a_fifo_after_listing_does_not_hang(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"jpeg")
    (item,) = list_items([str(tmp_path)])
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ImageLoadError, match="FIFO"):
        item.read()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--shard-size", "0", "'shard_size'"),
        ("--shard-size", "-3", "'shard_size'"),
        ("--resolution", "0", "'resolution'"),
        ("--resolution", "-5", "'resolution'"),
        ("--resolution", "100000", "'resolution'"),
        ("--face-fraction", "0", "'face_fraction'"),
        ("--face-fraction", "nan", "finite"),
        ("--face-fraction", "1.5", "'face_fraction'"),
        ("--min-face", "-1", "'min_face'"),
    ],
)
def test_options_out_of_range_are_refused_before_any_side_effect(
    option, value, words, photos, tmp_path, capsys
):
    result = _prepare(capsys, tmp_path, photos, option, value)
    assert_refused(result, words)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("kind", ["file", "FIFO"])
def test_out_naming_something_other_than_a_folder(kind, photos, tmp_path, capsys):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("mine")
    else:
        os.mkfifo(out)
    result = _prepare(capsys, tmp_path, photos)
    assert_refused(result, "not a folder")
    assert kind != "file" or out.read_text() == "mine"


def test_a_source_that_is_a_device_is_refused(tmp_path, capsys):
    device = zero_device(tmp_path / "zero.tar")
    assert_refused(_prepare(capsys, tmp_path, device), "a character device")


def test_a_missing_manifest_entry_is_still_skipped_as_unreadable(tmp_path):
    (item,) = list_items([_manifest(tmp_path, tmp_path / "gone.jpg")])
    with pytest.raises(ImageLoadError, match="no such file"):
        item.read()


def test_listing_refuses_a_nul_in_a_manifest_path(tmp_path):
    (tmp_path / "list.jsonl").write_text('{"path": "a\\u0000b.jpg"}\n')
    with pytest.raises(FaceStudioError, match="NUL"):
        list_items([str(tmp_path / "list.jsonl")])
