"""A full, read-only or forbidden disk while writing: one line naming the folder, exit 2, and no
temporary file left. On a real tiny tmpfs where this machine allows mounting (root), and with
a test double at the OS call (`os.fsync`, where a full disk also shows on network storage)
everywhere."""

from __future__ import annotations

import errno
import os

import pytest

from facestudio import outputs
from facestudio.data.prepare import PrepareConfig, prepare
from facestudio.errors import FaceStudioError
from facestudio.outputs import staged_output, write_outputs_atomic
from tests.conftest import shared_file
from tests.reliability.helpers import (
    FACE,
    assert_refused,
    fill,
    remount_read_only,
    run,
    small_disk,  # noqa: F401 (a fixture)
)


def test_faces_draw_on_a_full_disk(small_disk, capsys):  # noqa: F811
    fill(small_disk)
    result = run(capsys, "faces", shared_file(FACE), "--draw", small_disk / "out.png")
    assert_refused(result, f"no space left on '{small_disk}'")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]


def test_faces_json_on_a_read_only_disk_is_refused_before_the_work(small_disk, capsys):  # noqa: F811
    remount_read_only(small_disk)
    result = run(capsys, "faces", shared_file(FACE), "--json", small_disk / "out.json")
    assert_refused(result, "read-only file system")
    assert list(small_disk.iterdir()) == []


def test_prepare_on_a_full_disk_leaves_no_partial_shard(small_disk, capsys, tmp_path):  # noqa: F811
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(shared_file(FACE).read_bytes())
    fill(small_disk)
    result = run(capsys, "prepare", photos, "--out", small_disk / "prepared", "--resolution", "64")
    assert_refused(result, "no space left on")
    assert [p.name for p in (small_disk / "prepared").iterdir()] == []


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (errno.ENOSPC, "no space left on"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "no permission to write"),
    ],
)
def test_a_failed_write_is_one_line_and_leaves_nothing(number, words, tmp_path, monkeypatch):
    def refuse(handle):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(outputs.os, "fsync", refuse)
    with pytest.raises(FaceStudioError, match=words) as error:
        write_outputs_atomic([(tmp_path / "a.json", b"{}"), (tmp_path / "b.png", b"png")])
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_faces_cli_reports_a_full_disk_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        outputs.os, "fsync", lambda handle: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
    )
    result = run(capsys, "faces", shared_file(FACE), "--json", tmp_path / "out.json")
    assert_refused(result, f"no space left on '{tmp_path}'")
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_a_staged_output_is_removed_when_the_disk_fills(tmp_path):
    staged = staged_output(tmp_path / "shard.tar", tmp_path / ".shard.tar.tmp")
    with pytest.raises(FaceStudioError, match="no space left"), staged as temporary:
        temporary.write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_an_unrelated_error_inside_a_staged_output_keeps_its_traceback(tmp_path):
    """Only storage errors are translated; anything else may be a bug and stays as it is."""
    with pytest.raises(FileNotFoundError), staged_output(tmp_path / "shard.tar") as temporary:
        temporary.write_bytes(b"part")
        raise FileNotFoundError(errno.ENOENT, "missing model file")
    assert list(tmp_path.iterdir()) == []


def test_prepare_api_refuses_an_out_that_is_a_file(tmp_path, dlib_analyzer):
    (tmp_path / "out").write_text("mine")
    with pytest.raises(FaceStudioError, match="not a folder"):
        prepare([str(tmp_path)], tmp_path / "out", dlib_analyzer, PrepareConfig(), progress=False)
    assert (tmp_path / "out").read_text() == "mine"
