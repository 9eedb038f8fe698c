"""The CLI's top level: a user's mistake or the machine's state is one line and exit 2; anything
else (a bug) keeps its traceback. Known user-input classes are mapped, nothing is swallowed."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from facestudio.errors import FaceStudioError
from facestudio.interfaces import cache_command
from tests.reliability.helpers import assert_refused, run


def _command_raising(monkeypatch, exc: BaseException) -> None:
    def failing(args):
        raise exc

    monkeypatch.setattr(cache_command, "run", failing)


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (OSError(errno.EROFS, "Read-only file system", "/data/x"), "on '/data/x'"),
        (PermissionError(errno.EACCES, "Permission denied", "/data/y"), "Permission denied"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
        (FaceStudioError("first line\nsecond line"), "first line second line"),
    ],
)
def test_user_and_machine_errors_are_one_line(exc, words, monkeypatch, capsys):
    _command_raising(monkeypatch, exc)
    assert_refused(run(capsys, "cache"), words)


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/package/file"),
        OSError(errno.EINVAL, "Invalid argument"),
        ValueError("a bug"),
    ],
)
def test_other_errors_keep_their_traceback(exc, monkeypatch):
    _command_raising(monkeypatch, exc)
    with pytest.raises(type(exc)):
        run(None, "cache")


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path):
    """`facestudio ... | head -1`: no BrokenPipeError traceback."""
    command = (
        f"{sys.executable} -c 'import sys; from facestudio.interfaces import cache_command as c;"
        "from facestudio.interfaces.cli import main;"
        'c.run = lambda a: [print("x" * 1000) for _ in range(10000)] and 0;'
        'sys.exit(main(["cache"]))\' | head -c 10'
    )
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
