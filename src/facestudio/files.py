"""What a path names, in words, and why an operation on it failed, in one line.

Inputs are read and outputs are replaced only when they are regular files: a FIFO blocks a
reader forever, a device such as /dev/zero never ends, and renaming a result over a device
or a socket destroys it. Errors say which of these a path is (not "empty" or "no such file"),
and turn the operating system's error numbers for full, read-only or forbidden places into a
sentence that names the folder and the fix.
"""

from __future__ import annotations

import errno
import os
import stat

_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def kind_of(mode: int) -> str:
    """'a folder', 'a FIFO (named pipe)', 'a character device'...: what an `st_mode` describes."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


_REASONS = {
    errno.ENOSPC: ("no space left on '{folder}'", "free some space or choose another folder"),
    errno.EDQUOT: ("disk quota exceeded on '{folder}'", "free some space or choose another folder"),
    errno.EFBIG: (
        "the file is too large for the file system of '{folder}'",
        "choose another folder",
    ),
    errno.EROFS: ("'{folder}' is on a read-only file system", "choose another folder"),
    errno.EACCES: ("no permission to write in '{folder}'", "choose another folder"),
    errno.EPERM: ("no permission to write in '{folder}'", "choose another folder"),
    errno.ENOENT: ("folder '{folder}' does not exist", "create it first"),
    errno.ENOTDIR: ("'{folder}' is not a folder", "choose another folder"),
    errno.ENAMETOOLONG: ("the name is too long for '{folder}'", "choose a shorter name"),
    errno.ELOOP: ("too many symbolic links in '{folder}'", "give a plain path"),
    errno.EIO: (
        "input/output error on '{folder}' (a failing disk or a lost network mount?)",
        "check the device or choose another folder",
    ),
}
"""Error numbers a user can act on while writing. Anything else is not a user's mistake and
propagates unchanged, so that real bugs still show their traceback."""


STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
"""Errors that only the storage being written causes, whatever code was running."""


class NotAFile(Exception):
    """What `read_own_file` found instead of a small regular file (in words, for a message)."""


def read_own_file(path: os.PathLike | str, limit: int | None = None, length: int = -1) -> bytes:
    """The first `length` bytes (all, if -1) of a file the tool wrote itself.

    It is read only if it is a regular file (no larger than `limit`, if given), never through a
    symbolic link and never blocking (a FIFO put in its place is refused, not waited on);
    anything else raises `NotAFile` saying what is there. A missing file raises
    `FileNotFoundError` as usual.
    """
    _refuse_unless_regular(os.lstat(path).st_mode)  # a link is refused, not followed
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.open(path, flags)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO):
            raise
        raise NotAFile("no longer a regular file") from None  # swapped since the lstat
    with os.fdopen(handle, "rb") as file:
        state = os.fstat(handle)
        _refuse_unless_regular(state.st_mode)
        if limit is not None and state.st_size > limit:
            raise NotAFile(f"a file of {state.st_size} bytes, larger than FaceStudio writes")
        return file.read(length)


def _refuse_unless_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotAFile(kind_of(mode))


def write_failure(exc: OSError, folder: os.PathLike | str, name: os.PathLike | str) -> str | None:
    """One line for an `OSError` met while writing `name` in `folder`, or None if not a user's."""
    reason = _REASONS.get(exc.errno)
    if reason is None:
        return None
    problem, fix = reason
    return f"cannot write '{name}': {problem.format(folder=folder)}; {fix}"


def environment_failure(exc: OSError) -> str | None:
    """One line for an `OSError` that the machine or its files caused, wherever it was met:
    full, read-only or failing storage, or a permission a user can change. None for the rest,
    which may be a bug and keep their traceback."""
    if exc.errno not in STORAGE_ERRORS | {errno.EACCES, errno.EPERM}:
        return None
    where = f" on '{exc.filename}'" if exc.filename else ""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{exc.strerror or 'permission denied'}{where}; change its permissions or choose another path"
    return (
        f"{exc.strerror or os.strerror(exc.errno)}{where}; free some space or choose another folder"
    )
