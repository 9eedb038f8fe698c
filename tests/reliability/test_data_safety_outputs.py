"""Outputs: the last step replaces only what was checked before the work, and never an input.

A file that appears at the output path while the command runs (another process, a second
`generate` with the same `-o`) is left as it is, with or without `--force`; with `--force` the
file replaced is the one that was there at the start. An output that is one of the command's
own photos is refused even with `--force`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from facestudio.interfaces import generate_command
from tests.conftest import shared_file
from tests.reliability.helpers import FACE, assert_refused, run


def _generate(capsys, model: Path, *args) -> tuple[int, str, str]:
    return run(capsys, "generate", "--model", model, "--steps", "2", *args)


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "me.png"
    shutil.copy(shared_file(FACE), path)
    return path


def _meanwhile(monkeypatch, action) -> None:
    """Run `action` while the command works (when the model loads, after every check)."""
    real = generate_command.load_pipeline

    def load_and_act(*args, **kwargs):
        action()
        return real(*args, **kwargs)

    monkeypatch.setattr(generate_command, "load_pipeline", load_and_act)


@pytest.mark.parametrize("force", [False, True])
def test_a_file_appearing_during_generate_is_not_replaced(
    force, tiny_pipeline_folder, photo, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out.png"
    _meanwhile(monkeypatch, lambda: out.write_bytes(b"another process's image"))
    flags = ["--force"] if force else []
    result = _generate(capsys, tiny_pipeline_folder, "--face", photo, "-o", out, *flags)
    assert_refused(result, str(out), "while this command ran")
    assert out.read_bytes() == b"another process's image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.png", "out.png"]


def test_a_link_appearing_during_generate_is_not_replaced(
    tiny_pipeline_folder, photo, tmp_path, capsys, monkeypatch
):
    out, precious = tmp_path / "out.png", tmp_path / "precious.txt"
    precious.write_text("a user's file")
    _meanwhile(monkeypatch, lambda: os.symlink(precious, out))
    result = _generate(capsys, tiny_pipeline_folder, "--face", photo, "-o", out, "--force")
    assert_refused(result, str(out), "while this command ran")
    assert out.is_symlink() and precious.read_text() == "a user's file"


def test_with_force_a_file_swapped_during_generate_is_not_replaced(
    tiny_pipeline_folder, photo, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out.png"
    out.write_bytes(b"old result, agreed to replace")

    def swap():
        out.unlink()
        out.write_bytes(b"a new file someone saved meanwhile")

    _meanwhile(monkeypatch, swap)
    result = _generate(capsys, tiny_pipeline_folder, "--face", photo, "-o", out, "--force")
    assert_refused(result, str(out), "while this command ran")
    assert out.read_bytes() == b"a new file someone saved meanwhile"


def test_with_force_the_file_checked_is_replaced(tiny_pipeline_folder, photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"old result, agreed to replace")
    code, _, err = _generate(capsys, tiny_pipeline_folder, "--face", photo, "-o", out, "--force")
    assert code == 0, err
    assert out.read_bytes().startswith(b"\x89PNG")


def _same_path(photo: Path) -> Path:
    return photo


def _other_spelling(photo: Path) -> Path:
    return photo.parent / "." / photo.name


def _link_to_it(photo: Path) -> Path:
    os.symlink(photo, photo.with_name("alias.png"))
    return photo.with_name("alias.png")


def _hard_link(photo: Path) -> Path:
    os.link(photo, photo.with_name("hard.png"))
    return photo.with_name("hard.png")


@pytest.mark.parametrize("name", [_same_path, _other_spelling, _link_to_it, _hard_link])
@pytest.mark.parametrize("role", ["--face", "--person", "--style", "--image"])
def test_an_output_that_is_an_input_is_refused_even_with_force(
    name, role, tiny_pipeline_folder, photo, capsys, monkeypatch
):
    monkeypatch.setattr(generate_command, "load_pipeline", _must_not_load)
    before = photo.read_bytes()
    out = name(photo)
    face = [] if role == "--face" else ["--face", str(shared_file(FACE))]
    result = _generate(capsys, tiny_pipeline_folder, *face, role, photo, "-o", out, "--force")
    assert_refused(result, "is the input", str(photo.name))
    assert photo.read_bytes() == before


def _must_not_load(*args, **kwargs):
    raise AssertionError("the model was loaded although the output is refused")
