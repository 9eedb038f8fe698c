"""The server's upload folder: where the page's uploads wait, and the one way to read one back.

Gradio writes every file the page uploads (`/gradio_api/upload`) into a folder, and the page's
events then name the file by its path on the server. That path comes from the client, so it
can name any file the server can read: `UploadFolder.resolve` is the one check every file
reference passes before anything opens it. It accepts only a path that, with every link and
`..` resolved, lies inside this server's own upload folder; `read` then opens it without
following links or blocking (a FIFO cannot hang the server), requires a regular file and
bounds its size. Every refusal is the same line, so a client cannot tell a missing file from
an existing one it may not read.

The folder is private (mode 0700) and on disk, under the system's temporary folder, never in
memory (`/dev/shm`). Its parent folder carries a marker naming the process that made it: at
start, a server removes the folders of servers that are gone (crashed, killed), and only
those (and folders of ours that hold no file at all); on shutdown it removes its own. Uploads older than `ttl_s` are deleted, and the folder
holds at most `max_bytes`: an upload that would pass it is refused (HTTP 429) until older ones
expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from facestudio.app.messages import quote
from facestudio.errors import FaceStudioError
from facestudio.pipeline import limits
from facestudio.pipeline.request import Upload

PREFIX = "facestudio-server-"
MARKER = "owner.json"
"""In the server's folder, beside `uploads/`: which process made the folder."""
MAX_REFERENCE_CHARS = 4096


class UploadRefusedError(FaceStudioError):
    """A file reference that does not name a file uploaded to this server."""


class UploadsFullError(FaceStudioError):
    """The upload folder holds its maximum; `retry_after` says when older uploads expire."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UploadFolder:
    """One server's private upload folder (`path`), its limits, and its clean-up."""

    def __init__(self, root: Path, max_bytes: int, ttl_s: float) -> None:
        self.root = root
        self.path = root / "uploads"
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._real = os.path.realpath(self.path)

    @classmethod
    def create(cls, max_bytes: int, ttl_s: float, parent: Path | None = None) -> UploadFolder:
        """A new folder under `parent` (the system's temporary folder), after removing the
        folders that servers which are gone left there."""
        parent = Path(parent or tempfile.gettempdir())
        remove_abandoned(parent)
        root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))  # mode 0700
        (root / MARKER).write_text(json.dumps(_this_process()))
        (root / "uploads").mkdir(mode=0o700)
        return cls(root, max_bytes, ttl_s)

    # -- the one check -----------------------------------------------------------------------

    def resolve(self, reference: object, what: str = "photo") -> str:
        """The real path of `reference` if it names something inside this folder; else
        `UploadRefusedError`. Opens nothing: safe on the event loop, and before any copy."""
        if not isinstance(reference, str) or not 0 < len(reference) <= MAX_REFERENCE_CHARS:
            raise self._refusal(reference, what)
        if "\0" in reference or "://" in reference or reference.startswith("data:"):
            raise self._refusal(reference, what)
        try:
            real = os.path.realpath(reference)
            inside = os.path.commonpath([real, self._real]) == self._real and real != self._real
        except (OSError, ValueError):
            inside = False
        if not inside:
            raise self._refusal(reference, what)
        return real

    def read(self, reference: object, what: str = "photo") -> Upload:
        """The uploaded file `reference` names, read into memory (`resolve`, then a regular
        file of at most `limits.MAX_UPLOAD_BYTES`, opened without following a link)."""
        real = self.resolve(reference, what)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            handle = os.open(real, flags)
        except OSError:
            raise self._refusal(reference, what) from None
        state = os.fstat(handle)
        if not stat.S_ISREG(state.st_mode) or state.st_size > limits.MAX_UPLOAD_BYTES:
            os.close(handle)
            raise self._refusal(reference, what)
        with os.fdopen(handle, "rb") as file:
            data = file.read(limits.MAX_UPLOAD_BYTES + 1)
        if len(data) > limits.MAX_UPLOAD_BYTES:
            raise self._refusal(reference, what)
        return Upload(os.path.basename(real), data)

    def _refusal(self, reference: object, what: str) -> UploadRefusedError:
        name = os.path.basename(reference) if isinstance(reference, str) else "(not a path)"
        return UploadRefusedError(
            f"{what} '{quote(name)}' is not a file uploaded to this server (or its upload "
            f"expired after {self.ttl_s / 60:.0f} min); upload it again"
        )

    # -- room and age ----------------------------------------------------------------------------

    def admit(self, incoming: int) -> None:
        """Refuse (`UploadsFullError`) an upload of `incoming` bytes that would pass the bound."""
        used = self.used_bytes()
        if used + incoming > self.max_bytes:
            raise UploadsFullError(
                f"the server holds {used / 2**20:.0f} MiB of uploads, its limit is "
                f"{self.max_bytes / 2**20:.0f} MiB; try again when older uploads expire",
                retry_after=max(1, round(min(self.ttl_s, 60))),
            )

    def used_bytes(self) -> int:
        return sum(entry.stat(follow_symlinks=False).st_size for entry in self._files())

    def sweep(self, now: float | None = None) -> None:
        """Delete the uploads older than `ttl_s`, and the folders they leave empty."""
        limit = (now or time.time()) - self.ttl_s
        for entry in self._files():
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry.path)
        for folder, _, _ in sorted(os.walk(self.path), reverse=True):
            if folder != str(self.path):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only succeeds when empty

    async def keep_clean(self) -> None:
        """Sweep every few seconds until cancelled (the server's lifespan runs this)."""
        while True:
            await asyncio.sleep(max(0.5, min(30.0, self.ttl_s / 4)))
            await asyncio.to_thread(self.sweep)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _files(self) -> list[os.DirEntry]:
        found, pending = [], [str(self.path)]
        while pending:
            with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    else:
                        found.append(entry)
        return found


def remove_abandoned(parent: Path) -> list[Path]:
    """Remove the folders in `parent` that a server made (marked as ours, owned by this user)
    whose process is gone; the removed ones. Anything unmarked, foreign or alive is kept."""
    try:
        with os.scandir(parent) as entries:
            candidates = [e for e in entries if e.name.startswith(PREFIX)]
    except OSError:
        return []
    removed = []
    for entry in candidates:
        owner = _owner_of(entry)
        if owner is not None and not _alive(owner):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
        elif owner is None and _remove_if_empty(entry):
            removed.append(Path(entry.path))
    return removed


def _remove_if_empty(entry: os.DirEntry) -> bool:
    """Remove an unmarked folder of ours that holds folders only (gradio makes one in the
    folder it first saw, even after that server is gone); never a file. Whether it went."""
    if not entry.is_dir(follow_symlinks=False):
        return False
    for folder, _, _ in sorted(os.walk(entry.path), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # fails for any folder with a file (or link) in it
    return not os.path.lexists(entry.path)


def _owner_of(entry: os.DirEntry) -> dict | None:
    """The marker of a folder this user made as a server folder, or None."""
    try:
        state = entry.stat(follow_symlinks=False)
        if not stat.S_ISDIR(state.st_mode) or state.st_uid != os.getuid():
            return None
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
        handle = os.open(os.path.join(entry.path, MARKER), flags)
        with os.fdopen(handle, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                return None
            owner = json.loads(file.read(4096))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _this_process() -> dict:
    return {"pid": os.getpid(), "start": _start_time(os.getpid()), "boot": _boot_id()}


def _alive(owner: dict) -> bool:
    """Whether the process that wrote `owner` still runs (the same boot, pid and start)."""
    if owner.get("boot") != _boot_id():
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # it exists (another user's) or the marker is odd: keep the folder
    return owner.get("start") == _start_time(owner["pid"])  # a reused pid is another process


def _start_time(pid: int) -> str | None:
    """When the process started (Linux: clock ticks after boot), to tell a reused pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
