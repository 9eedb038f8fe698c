"""Writing results: never over a user's file unless asked, never a partial file.

Only regular files are ever replaced. A folder, FIFO, device or socket (or a symbolic link to
one) named as an output is refused twice: by `check_output_paths` before any work, and again
by `write_outputs_atomic` right before its rename, because the path may have changed while
the work ran. A link to a regular file is written through, as `open()` would: the file it
points to is replaced, the link stays. Results are written beside their destination and
renamed into place, so a reader, a crash or a full disk never leaves half a file.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, PngImagePlugin

from facestudio.errors import FaceStudioError
from facestudio.files import STORAGE_ERRORS, kind_of, write_failure


def check_output_paths(paths: Iterable[str | os.PathLike], force: bool) -> list[Path]:
    """`check_output_path` for every output of one command, and no two naming the same file.

    Two names are the same file when they resolve to the same path (`out.png`, `./out.png`,
    a symbolic link to it): the second output would silently replace the first.
    """
    checked = [check_output_path(path, force) for path in paths]
    seen: dict[str, Path] = {}
    for path in checked:
        key = os.path.realpath(path)
        if key in seen:
            names = f"'{path}'" if seen[key] == path else f"'{seen[key]}' and '{path}'"
            raise FaceStudioError(
                f"two outputs would be the same file ({names}); give each output its own name"
            )
        seen[key] = path
    return checked


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Refuse, before any work is done: an existing file (unless `force`), anything that is not
    a regular file (even with `force`), and a folder that is missing or cannot be written."""
    path = Path(path)
    try:
        state = path.stat()  # follows a link: what would be replaced
    except FileNotFoundError:
        state = None
        if path.is_symlink():
            raise FaceStudioError(
                f"output '{path}' is a symbolic link to '{os.readlink(path)}', which does not "
                "exist; remove the link or choose another name"
            ) from None
    except OSError as exc:
        raise FaceStudioError(f"cannot write '{path}': {exc.strerror}") from None
    if state is not None:
        if stat.S_ISDIR(state.st_mode):
            raise FaceStudioError(f"output '{path}' is a folder; give a file name")
        _refuse_unless_regular(path, state.st_mode)
        if not force:
            raise FaceStudioError(
                f"output '{path}' already exists; choose another name or pass --force to "
                "overwrite it"
            )
    _check_writable_folder(Path(os.path.realpath(path)).parent, path)
    return path


def check_output_folder(path: str | os.PathLike, empty: bool = False) -> Path:
    """A folder that results go into: an existing folder (empty, if `empty`), or a new one whose
    nearest existing parent is a writable folder. Nothing is created here."""
    path = Path(path)
    try:
        state = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        parent = path.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        _check_writable_folder(parent, path)
        return path
    except OSError as exc:
        raise FaceStudioError(f"cannot use output folder '{path}': {exc.strerror}") from None
    if not stat.S_ISDIR(state.st_mode):
        raise FaceStudioError(
            f"output folder '{path}' is {kind_of(state.st_mode)}, not a folder; "
            "give a new or existing folder"
        )
    if empty and any(path.iterdir()):
        raise FaceStudioError(f"output folder '{path}' is not empty; choose a new one")
    _check_writable_folder(path, path)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see all or nothing."""
    write_outputs_atomic([(path, data)])


def write_outputs_atomic(outputs: Sequence[tuple[str | os.PathLike, bytes]]) -> None:
    """Write several results of one command: all are written beside their destinations first
    and renamed only when every one is complete, so a full disk leaves none of them.

    Raises `FaceStudioError` with one line for what a user can fix (no space, read-only,
    forbidden, not a regular file); the temporary files are removed in every case.
    """
    staged: list[tuple[str, Path, Path]] = []
    current = Path(os.fspath(outputs[0][0])) if outputs else Path()
    try:
        for path, data in outputs:
            current = Path(path)
            target = Path(os.path.realpath(current))  # through a link, as open() would
            _refuse_unless_regular_or_missing(target, current)
            staged.append((_stage(target, data), target, current))
        while staged:
            temporary, target, current = staged[0]
            # Checked again right before the rename: the path may have changed during the work.
            _refuse_unless_regular_or_missing(target, current)
            os.replace(temporary, target)
            staged.pop(0)
    except OSError as exc:
        message = write_failure(exc, Path(os.path.realpath(current)).parent, current)
        if message is None:
            raise
        raise FaceStudioError(message) from None
    finally:
        for temporary, _, _ in staged:
            Path(temporary).unlink(missing_ok=True)


@contextmanager
def staged_output(path: str | os.PathLike, temporary: str | os.PathLike | None = None):
    """For a result written piece by piece (a tar shard): yields a temporary path beside
    `path` to write, renamed over `path` when the block completes and removed if it fails.

    `temporary` names the temporary file (default: a new unique name); a fixed name lets an
    interrupted run reuse it instead of leaving one more behind. Errors a user can fix (no
    space, read-only...) become one-line `FaceStudioError`s, as in `write_outputs_atomic`.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    staged, in_body = None, False
    try:
        if temporary is None:
            handle, temporary = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
            os.close(handle)
        staged = Path(temporary)
        in_body = True
        yield staged
        in_body = False
        _refuse_unless_regular_or_missing(target, path)
        os.replace(staged, target)
    except OSError as exc:
        # From the caller's block, only a storage error is surely the writing's fault.
        message = write_failure(exc, target.parent, path)
        if message is None or (in_body and exc.errno not in STORAGE_ERRORS):
            raise
        raise FaceStudioError(message) from None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)


def _stage(target: Path, data: bytes) -> str:
    """`data` in a new temporary file beside `target`, flushed to disk; returns its path."""
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private (0600); a result gets the mode any new file would.
        os.chmod(temporary, 0o666 & ~_umask())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _refuse_unless_regular_or_missing(target: Path, named: Path) -> None:
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    _refuse_unless_regular(named, mode)


def _refuse_unless_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        link = " links to" if path.is_symlink() else " is"
        raise FaceStudioError(
            f"output '{path}'{link} {kind_of(mode)}; only regular files are replaced, "
            "so choose another name"
        )


def _check_writable_folder(folder: Path, path: Path) -> None:
    if not folder.exists():
        message = write_failure(FileNotFoundError(errno.ENOENT, ""), folder, path)
        raise FaceStudioError(message)
    if not folder.is_dir():
        raise FaceStudioError(write_failure(NotADirectoryError(errno.ENOTDIR, ""), folder, path))
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise FaceStudioError(write_failure(OSError(errno.EROFS, ""), folder, path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FaceStudioError(write_failure(PermissionError(errno.EACCES, ""), folder, path))


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; restored at once
    os.umask(mask)
    return mask


def encode_png(image: Image.Image, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes with `text` stored as tEXt/iTXt chunks (the settings of a generated image)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
