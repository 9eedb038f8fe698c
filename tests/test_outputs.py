"""facestudio.outputs: results are written whole, never over a user's file, readable as usual."""

from __future__ import annotations

import os
import stat

import pytest

from facestudio.errors import FaceStudioError
from facestudio.outputs import check_output_path, write_bytes_atomic


def test_a_written_file_gets_the_usual_mode_and_no_temporary_is_left(tmp_path):
    previous = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "out.png", b"data")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.png").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_an_existing_file_is_refused_unless_forced(tmp_path):
    (tmp_path / "mine.png").write_bytes(b"user's")
    with pytest.raises(FaceStudioError, match="--force"):
        check_output_path(tmp_path / "mine.png", force=False)
    assert check_output_path(tmp_path / "mine.png", force=True) == tmp_path / "mine.png"


def test_an_output_folder_must_be_a_folder_and_may_be_required_empty(tmp_path):
    from facestudio.outputs import check_output_folder

    (tmp_path / "file").write_text("mine")
    with pytest.raises(FaceStudioError, match="is a regular file, not a folder"):
        check_output_folder(tmp_path / "file")
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created by the check
    with pytest.raises(FaceStudioError, match="not empty"):
        check_output_folder(tmp_path, empty=True)
    with pytest.raises(FaceStudioError, match="not a folder"):
        check_output_folder(tmp_path / "file" / "below")


def test_a_new_output_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    from facestudio.outputs import check_output_paths, write_outputs_atomic

    (path,) = check_output_paths([tmp_path / "out.json"], force=False)
    path.write_bytes(b"another process's result")
    with pytest.raises(FaceStudioError, match="created by something else"):
        write_outputs_atomic([(path, b"{}")])
    assert path.read_bytes() == b"another process's result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_without_hard_links_a_new_output_is_still_created_exclusively(tmp_path, monkeypatch):
    """A file system without hard links (FAT, some network mounts): the result is copied into
    a file created exclusively, so an existing name still fails instead of being replaced."""
    import errno

    from facestudio import outputs

    def no_links(source, destination):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(outputs.os, "link", no_links)
    (first,) = outputs.check_output_paths([tmp_path / "a.json"], force=False)
    outputs.write_outputs_atomic([(first, b"result")])
    assert first.read_bytes() == b"result"
    (second,) = outputs.check_output_paths([tmp_path / "b.json"], force=False)
    second.write_bytes(b"mine")
    with pytest.raises(FaceStudioError, match="created by something else"):
        outputs.write_outputs_atomic([(second, b"result")])
    assert second.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_a_folder_made_whole_never_replaces_one_filled_meanwhile(tmp_path):
    from facestudio.outputs import check_new_folder, staged_folder

    out = check_new_folder(tmp_path / "model")
    with (
        pytest.raises(FaceStudioError, match="filled or replaced"),
        staged_folder(out) as temporary,
    ):
        (temporary / "weights").write_bytes(b"new")
        out.mkdir()
        (out / "mine.txt").write_text("a user's file")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left


def test_a_folder_is_ours_only_with_our_mark(tmp_path):
    from facestudio.outputs import MARK, check_own_folder, mark_folder

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's notes")
    with pytest.raises(FaceStudioError, match="not a FaceStudio training run folder"):
        check_own_folder(tmp_path / "mine", "run")
    assert check_own_folder(tmp_path / "new", "run") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # nothing is created by the check
    assert mark_folder(tmp_path / "new", "run") and not mark_folder(tmp_path / "new", "run")
    (tmp_path / "new" / "log.csv").write_text("step\n")
    assert check_own_folder(tmp_path / "new", "run") == tmp_path / "new"
    with pytest.raises(FaceStudioError, match="training run folder, not a prepared-data"):
        check_own_folder(tmp_path / "new", "prepare")
    (tmp_path / "new" / MARK).write_text('{"format": "something else"}')
    with pytest.raises(FaceStudioError, match="not a mark FaceStudio wrote"):
        check_own_folder(tmp_path / "new", "run")
    (tmp_path / "new" / MARK).unlink()
    os.symlink(tmp_path / "mine" / "notes.txt", tmp_path / "new" / MARK)
    with pytest.raises(FaceStudioError, match="symbolic link"):
        check_own_folder(tmp_path / "new", "run")
