"""Driving the real CLI in-process and checking the shape of a refusal: exit 2, one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from facestudio.interfaces.cli import main

FACE = "data/deepface/id04/img16.jpg"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run(capsys, *args: str) -> tuple[int, str, str]:
    """`facestudio ARGS` in this process: exit code, stdout, stderr."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(result: tuple[int, str, str], *words: str) -> str:
    """Exit 2 and exactly one error line, naming each of `words`; returns that line."""
    code, _, err = result
    errors = [line for line in err.splitlines() if line.startswith("facestudio: error:")]
    assert code == 2, err
    assert len(errors) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def character_device(path: Path) -> Path:
    """A node like /dev/full (1, 7), made in a temporary folder (needs root)."""
    return _device_node(path, minor=7)


def zero_device(path: Path) -> Path:
    """A node like /dev/zero (1, 5), which never ends, made in a temporary folder (needs root)."""
    return _device_node(path, minor=5)


def _device_node(path: Path, minor: int) -> Path:
    if not IS_ROOT:
        pytest.skip("making a device node needs root")
    os.mknod(path, 0o666 | 0o020000, os.makedev(1, minor))
    return path


def fifo(path: Path) -> Path:
    """A named pipe at `path`: opening it for reading blocks until a writer comes."""
    os.mkfifo(path)
    return path


def link_to_fifo(path: Path) -> Path:
    """A symbolic link at `path` to a FIFO beside it."""
    os.symlink(fifo(path.with_name(f"{path.name}.fifo")), path)
    return path


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs in the test's folder (root only), unmounted after the test."""
    if not IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Fill the file system of `folder` to the last byte."""
    with open(folder / "filler", "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass
