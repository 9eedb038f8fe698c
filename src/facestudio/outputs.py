"""Writing results: never over a user's file unless asked, never a partial file.

Only regular files are ever replaced. A folder, FIFO, device or socket (or a symbolic link to
one) named as an output is refused twice: by `check_output_paths` before any work, and again
by `write_outputs_atomic` right before its rename, because the path may have changed while
the work ran. A link to a regular file is written through, as `open()` would: the file it
points to is replaced, the link stays. Results are written beside their destination and
renamed into place, so a reader, a crash or a full disk never leaves half a file.

The last step replaces only what the check before the work saw: a file that was not there is
created without replacing anything (a hard link, which fails if the name exists), and a file
`--force` agreed to replace is replaced only if it is still that file. An output that is one of
the command's inputs is refused even with `--force`.

A folder the tool writes into again (a training run, prepared data) is its own only if it
carries the tool's mark, `.facestudio-folder.json`, written when the tool made it: files in any
other folder that is not empty are never deleted, appended to or replaced.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from PIL import Image, PngImagePlugin

from facestudio.errors import FaceStudioError
from facestudio.files import STORAGE_ERRORS, NotAFile, kind_of, read_own_file, write_failure


class OutputPath(type(Path())):
    """A path `check_output_path` accepted, with what was there then. `found` is the state
    (`_version`) of the file `--force` agreed to replace, or None when nothing was there: the
    final write then creates the file and never replaces one that appeared meanwhile."""

    found: tuple[int, ...] | None = None


def check_output_paths(
    paths: Iterable[str | os.PathLike], force: bool, inputs: Iterable[str | os.PathLike] = ()
) -> list[OutputPath]:
    """`check_output_path` for every output of one command, and no two naming the same file.

    Two names are the same file when they resolve to the same path (`out.png`, `./out.png`,
    a symbolic link to it): the second output would silently replace the first.
    """
    inputs = list(inputs)
    checked = [check_output_path(path, force, inputs) for path in paths]
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


def check_output_path(
    path: str | os.PathLike, force: bool, inputs: Iterable[str | os.PathLike] = ()
) -> OutputPath:
    """Refuse, before any work is done: one of the command's `inputs` (even with `force`), an
    existing file (unless `force`), anything that is not a regular file (even with `force`), and
    a folder that is missing or cannot be written. Returns the path with what was found there."""
    path = OutputPath(path)
    _refuse_an_input(path, inputs)
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
        path.found = _version(state)
    _check_writable_folder(Path(os.path.realpath(path)).parent, path)
    return path


def _refuse_an_input(path: Path, inputs: Iterable[str | os.PathLike]) -> None:
    """An output must not be an input: the same file (by device and inode, so a hard or
    symbolic link to it too) or the same resolved path."""
    output = _identity(path)
    resolved = os.path.realpath(path)
    for name in inputs:
        found = _identity(name)
        if found is not None and (found == output or os.path.realpath(name) == resolved):
            raise FaceStudioError(
                f"output '{path}' is the input '{name}'; a command never writes over its own "
                "inputs, so choose another name"
            )


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file `path` leads to, or None if there is none."""
    try:
        state = os.stat(path)
    except (OSError, ValueError):
        return None
    return state.st_dev, state.st_ino


def _version(state: os.stat_result) -> tuple[int, ...]:
    """Which file, and which version of it: a file deleted and made again may get the same
    inode number, but not the same modification time (nanoseconds) and size."""
    return state.st_dev, state.st_ino, state.st_size, state.st_mtime_ns


def _current_version(path: Path) -> tuple[int, ...] | None:
    try:
        return _version(os.stat(path))
    except FileNotFoundError:
        return None


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


MARK = ".facestudio-folder.json"
FOLDER_FORMAT = "facestudio-folder-v1"
FOLDER_KINDS = {"run": "training run folder", "prepare": "prepared-data folder"}
"""The folders the tool writes into again and again, by the `kind` in their mark."""


def check_own_folder(
    path: str | os.PathLike, kind: str, made_before_marks: Callable[[Path], bool] | None = None
) -> Path:
    """Refuse, before any work, an output folder of `kind` that the tool may not write into.

    Accepted: a new path (as `check_output_folder`), an empty folder, a folder carrying the
    mark of `kind`, or one that `made_before_marks` recognises by the tool's own layout (made
    by a version before the mark; `mark_folder` then marks it). Anything else that is not
    empty, or a folder of another kind, is refused: the tool never deletes, appends to or
    replaces files in a folder it did not make.
    """
    path = check_output_folder(path)
    if not path.exists():
        return path
    found = _read_mark(path)
    if found is None and not any(path.iterdir()):
        return path
    if found is None and made_before_marks is not None and made_before_marks(path):
        return path
    if found in (kind, ""):  # "": being written by another process right now
        return path
    noun = FOLDER_KINDS[kind]
    if found is None:
        raise FaceStudioError(
            f"output folder '{path}' is not a FaceStudio {noun}: it holds files FaceStudio did "
            f"not make (and no {MARK}), which are never replaced; choose a new or empty folder"
        )
    raise FaceStudioError(
        f"output folder '{path}' is a FaceStudio {FOLDER_KINDS.get(found, found)}, not a "
        f"{noun}; choose a new or empty folder"
    )


def mark_folder(path: str | os.PathLike, kind: str) -> bool:
    """Create `path` if needed and mark it as the tool's folder of `kind` (the first write to
    a folder `check_own_folder` accepted). Returns whether this call wrote the mark."""
    path = Path(path)
    text = json.dumps({"format": FOLDER_FORMAT, "kind": kind, "by": "FaceStudio"}).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = os.open(path / MARK, flags, 0o666)
    except FileExistsError:
        check_own_folder(path, kind)  # marked by another process, or of another kind
        return False
    except OSError as exc:
        raise _write_error(exc, path, path / MARK) from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(text)  # one small write: a reader sees all of it or an empty file
    except OSError as exc:
        unmark_folder(path)  # made exclusively by this call
        raise _write_error(exc, path, path / MARK) from None
    return True


def _write_error(exc: OSError, folder: Path, name: Path) -> Exception:
    """The one-line error for a failed write a user can act on; else the error itself."""
    message = write_failure(exc, folder, name)
    return exc if message is None else FaceStudioError(message)


def unmark_folder(path: str | os.PathLike) -> None:
    """Remove the mark `mark_folder` wrote (a first write that failed leaves nothing)."""
    (Path(path) / MARK).unlink(missing_ok=True)


def check_new_folder(path: str | os.PathLike) -> Path:
    """A folder `staged_folder` will make whole: a new path or an empty folder, and not a
    symbolic link (the rename would replace the link, not fill the folder it names)."""
    path = Path(path)
    if path.is_symlink():
        raise FaceStudioError(
            f"output folder '{path}' is a symbolic link (to '{os.readlink(path)}'); give a new "
            "folder or an empty one"
        )
    return check_output_folder(path, empty=True)


def _read_mark(folder: Path) -> str | None:
    """The kind in `folder`'s mark, "" for an empty mark (being written), None for no mark."""
    try:
        text = read_own_file(folder / MARK, limit=4096)
    except FileNotFoundError:
        return None
    except NotAFile as exc:
        raise FaceStudioError(
            f"'{folder / MARK}' is {exc}, not FaceStudio's mark; choose a new or empty folder"
        ) from None
    if not text:
        return ""
    try:
        mark = json.loads(text)
        if mark["format"] == FOLDER_FORMAT and mark["kind"] in FOLDER_KINDS:
            return mark["kind"]
    except (ValueError, TypeError, KeyError):
        pass
    raise FaceStudioError(
        f"'{folder / MARK}' is not a mark FaceStudio wrote; choose a new or empty folder"
    )


@contextmanager
def staged_folder(folder: str | os.PathLike):
    """For a result that is a whole folder (a pipeline): yields a new temporary folder beside
    `folder` to fill, renamed to `folder` when the block completes and removed if it fails.

    `folder` must have been checked to be new or an empty folder; it is never replaced
    otherwise: the rename fails if a file, a link or a folder with anything in it is there now.
    No existing name is reused for the temporary folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp's folder is private; a result is not
        yield temporary
        _rename_folder_no_replace(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _rename_folder_no_replace(temporary: Path, folder: Path) -> None:
    made = False
    try:
        os.mkdir(folder)  # claims a new name; an empty folder found there is replaced
        made = True
    except FileExistsError:
        pass
    try:
        os.rename(temporary, folder)  # fails over a file, a link, or a folder that is not empty
    except OSError as exc:
        if made:
            with suppress(OSError):  # ours and empty, unless filled meanwhile: then it stays
                folder.rmdir()
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise FaceStudioError(
            f"output folder '{folder}' was filled or replaced by something else while this "
            "command ran; it was left as it is and nothing was written; choose a new folder"
        ) from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see all or nothing."""
    write_outputs_atomic([(path, data)])


def write_outputs_atomic(outputs: Sequence[tuple[str | os.PathLike, bytes]]) -> None:
    """Write several results of one command: all are written beside their destinations first
    and published only when every one is complete, so a full disk leaves none of them.

    An `OutputPath` (from `check_output_path`) is published only over what the check saw; a
    plain path is a file in a folder the tool owns and is replaced. Raises `FaceStudioError`
    with one line for what a user can fix (no space, read-only, forbidden, not a regular file,
    changed during the work); the temporary files are removed in every case.
    """
    staged: list[tuple[str, Path, Path]] = []
    current = Path(os.fspath(outputs[0][0])) if outputs else Path()
    try:
        for path, data in outputs:
            current = path if isinstance(path, OutputPath) else Path(path)
            target = Path(os.path.realpath(current))  # through a link, as open() would
            _refuse_unless_regular_or_missing(target, current)
            staged.append((_stage(target, data), target, current))
        for _, target, current in staged:
            # Checked again right before publishing: the path may have changed during the work.
            _refuse_unless_regular_or_missing(target, current)
            _refuse_if_changed(current, target)
        while staged:
            temporary, target, current = staged[0]
            _publish(temporary, target, current)
            staged.pop(0)
    except OSError as exc:
        message = write_failure(exc, Path(os.path.realpath(current)).parent, current)
        if message is None:
            raise
        raise FaceStudioError(message) from None
    finally:
        for temporary, _, _ in staged:
            Path(temporary).unlink(missing_ok=True)


def _refuse_if_changed(path: Path, target: Path) -> None:
    """An `OutputPath` still holds what its check found: nothing, or the same file."""
    if not isinstance(path, OutputPath):
        return
    if path.found is None and os.path.lexists(path):
        raise _changed(path, "created")
    if path.found is not None and _current_version(target) not in (None, path.found):
        raise _changed(path, "replaced or changed")


def _changed(path: Path, how: str) -> FaceStudioError:
    return FaceStudioError(
        f"output '{path}' was {how} by something else while this command ran; it was left as "
        "it is and nothing was written; run the command again"
    )


def _publish(temporary: str, target: Path, path: Path) -> None:
    """Move a staged result into place: over the file that was checked, or as a new file that
    replaces nothing (a name taken meanwhile fails instead of being replaced)."""
    if not isinstance(path, OutputPath) or (
        path.found is not None and _identity(target) is not None
    ):
        os.replace(temporary, target)  # a plain path, or the file checked just before
        return
    destination = Path(os.path.realpath(path.parent)) / path.name  # the name itself, no link
    try:
        os.link(temporary, destination)
    except FileExistsError:
        raise _changed(path, "created") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        _copy_exclusive(temporary, destination, path)  # a file system without hard links
    os.unlink(temporary)


def _copy_exclusive(temporary: str, destination: Path, path: Path) -> None:
    """Create `destination` (never over an existing name) with the bytes of `temporary`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.open(destination, flags, 0o666)
    except FileExistsError:
        raise _changed(path, "created") from None
    try:
        with os.fdopen(handle, "wb") as file, open(temporary, "rb") as source:
            shutil.copyfileobj(source, file)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        destination.unlink(missing_ok=True)  # made by this call, exclusively
        raise


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
