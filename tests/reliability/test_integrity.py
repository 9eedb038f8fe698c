"""Integrity: an output replaces only a regular file (and only with --force), and two outputs of
one command never name the same file. Nodes are made in a temporary folder, never in /dev."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from facestudio.errors import FaceStudioError
from facestudio.outputs import check_output_paths, write_outputs_atomic
from tests.conftest import shared_file
from tests.reliability.helpers import (
    FACE,
    assert_refused,
    character_device,
    fifo,
    link_to_fifo,
    run,
)


def _socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path




def _folder(path):
    path.mkdir()
    return path


NODES = {
    "character device": (character_device, "a character device"),
    "FIFO": (fifo, "a FIFO"),
    "socket": (_socket, "a socket"),
    "symlink to a FIFO": (link_to_fifo, "links to a FIFO"),
    "folder": (_folder, "is a folder"),
}


def _kind(path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("option", ["--json", "--draw"])
def test_faces_never_replaces_what_is_not_a_regular_file(node, option, tmp_path, capsys):
    make, words = NODES[node]
    target = make(tmp_path / "result.png")
    before = _kind(target)
    result = run(capsys, "faces", shared_file(FACE), option, target, "--force")
    assert_refused(result, words, "only regular files" if node != "folder" else "file name")
    assert _kind(target) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _must_not_load(*args):
    raise AssertionError("the model was loaded although the output is refused")


def test_generate_never_replaces_a_device(tmp_path, capsys, monkeypatch):
    from facestudio.interfaces import generate_command

    monkeypatch.setattr(generate_command, "load_pipeline", _must_not_load)
    node = character_device(tmp_path / "node.png")
    result = run(capsys, "generate", "--example", "-o", node, "--force")
    assert_refused(result, "a character device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


@pytest.mark.parametrize(
    ("first", "second"),
    [("out.png", "out.png"), ("./out.png", "out.png"), ("sub/../out.png", "out.png")],
)
def test_two_outputs_naming_one_file_are_refused_before_any_work(
    first, second, tmp_path, capsys, monkeypatch
):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    result = run(capsys, "faces", shared_file(FACE), "--json", first, "--draw", second)
    assert_refused(result, "same file")
    assert not (tmp_path / "out.png").exists()


def test_a_link_to_another_output_is_the_same_file(tmp_path, capsys):
    (tmp_path / "out.png").write_bytes(b"mine")
    os.symlink(tmp_path / "out.png", tmp_path / "alias.json")
    result = run(
        capsys,
        "faces",
        shared_file(FACE),
        "--json",
        tmp_path / "alias.json",
        "--draw",
        tmp_path / "out.png",
        "--force",
    )
    assert_refused(result, "same file")
    assert (tmp_path / "out.png").read_bytes() == b"mine"


def test_a_path_that_became_a_fifo_during_the_work_is_not_replaced(tmp_path):
    """The check before the work is repeated right before the rename."""
    (path,) = check_output_paths([tmp_path / "out.json"], force=False)
    os.mkfifo(path)  # appears while the command runs
    with pytest.raises(FaceStudioError, match="FIFO"):
        write_outputs_atomic([(path, b"{}")])
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_outputs_are_written_all_or_none(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.png"
    os.mkfifo(second)
    with pytest.raises(FaceStudioError, match="FIFO"):
        write_outputs_atomic([(first, b"{}"), (second, b"png")])
    assert not first.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["b.png"]


def test_a_link_to_a_regular_file_is_written_through(tmp_path):
    (tmp_path / "real.json").write_bytes(b"old")
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    (path,) = check_output_paths([tmp_path / "link.json"], force=True)
    write_outputs_atomic([(path, b"new")])
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "real.json").read_bytes() == b"new"


def test_a_dangling_link_is_refused(tmp_path):
    os.symlink(tmp_path / "nowhere.json", tmp_path / "link.json")
    with pytest.raises(FaceStudioError, match="does not exist"):
        check_output_paths([tmp_path / "link.json"], force=True)
    assert not (tmp_path / "nowhere.json").exists()
