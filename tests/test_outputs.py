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
