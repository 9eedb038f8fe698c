"""A persistent cache of detections and embeddings, keyed by image content hash and backend.

Only derived numbers are stored (boxes, landmarks, embeddings), never the photos. It is an
SQLite file, safe to share between processes of one data-preparation run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import stat
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facestudio.errors import FaceStudioError
from facestudio.faces.types import Face, ImageFaces
from facestudio.files import kind_of

DATABASE = "faces.sqlite"
_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS detections (
    digest TEXT, backend TEXT, width INTEGER, height INTEGER, faces TEXT,
    PRIMARY KEY (digest, backend));
CREATE TABLE IF NOT EXISTS embeddings (
    digest TEXT, backend TEXT, face_index INTEGER, vector BLOB,
    PRIMARY KEY (digest, backend, face_index));
"""


def default_cache_dir() -> Path:
    """`$FACESTUDIO_CACHE`, else `$XDG_CACHE_HOME/facestudio`, else `~/.cache/facestudio`."""
    if os.environ.get("FACESTUDIO_CACHE"):
        return Path(os.environ["FACESTUDIO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facestudio"


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FaceCache:
    """Detections and embeddings by (content sha256, backend fingerprint).

    The cache only holds what can be recomputed, so it never stops a command: a damaged
    database is set aside (renamed `faces.sqlite.damaged-<time>`, with a warning) and rebuilt,
    and a folder that cannot be written (read-only, no permission) runs without a cache, with
    a warning. Only a cache folder that is not a folder at all is an error: that is a setting
    to fix.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).expanduser()
        self.path = self.folder / DATABASE
        check_cache_folder(self.folder)
        self._db: sqlite3.Connection | None = None
        self._open_or_turn_off()

    @property
    def usable(self) -> bool:
        """False when the cache could not be opened (every lookup misses, nothing is kept)."""
        return self._db is not None

    def _open_or_turn_off(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = self._open()
        except (OSError, sqlite3.OperationalError) as exc:
            self._turn_off(exc)

    def _turn_off(self, exc: Exception) -> None:
        if self._db is not None:
            self._db.close()
        self._db = None
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _log.warning(
            "the face cache in '%s' cannot be used (%s); running without it (set "
            "FACESTUDIO_CACHE to a writable folder, or pass --no-cache)",
            self.folder,
            reason,
        )

    def _recover(self) -> None:
        """Damage found by a statement (a header can be fine while pages are not)."""
        self._db.close()
        self._db = None
        try:
            self._set_aside_if_damaged()
            self._db = self._connect()
        except (OSError, sqlite3.OperationalError) as exc:
            self._turn_off(exc)

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
        self._set_aside_if_damaged()
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        # Several processes may open a new cache at once; switching it to WAL then fails
        # with "locked" without waiting for the busy timeout, so retry briefly.
        attempt = 0
        while True:
            db = sqlite3.connect(self.path, timeout=60)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                attempt += 1
                if not _has_code(exc, _BUSY) or attempt == 50:
                    raise
                time.sleep(0.1)
            except BaseException:
                db.close()
                raise

    def _set_aside_if_damaged(self) -> None:
        """Rename a damaged database out of the way, once, even with several processes."""
        with _folder_lock(self.folder):
            if _is_healthy(self.path):  # another process already set it aside
                return
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{DATABASE}.damaged-{stamp}-{os.getpid()}")
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):  # its journal must not be applied to the new one
                journal = Path(f"{self.path}{suffix}")
                if journal.exists():
                    os.replace(journal, Path(f"{aside}{suffix}"))
        _log.warning(
            "the face cache '%s' was damaged: set aside as '%s' and rebuilt (it only holds "
            "detections and embeddings, which are recomputed)",
            self.path,
            aside.name,
        )

    def _run(self, statement: str, parameters: tuple = (), write: bool = False):
        """One statement (a row, or the cursor of a write). A database found damaged now is
        set aside and the statement retried; a full or read-only disk turns the cache off."""
        for attempt in range(2):
            if self._db is None:
                return None
            try:
                if write:
                    with self._db:
                        return self._db.execute(statement, parameters)
                return self._db.execute(statement, parameters).fetchone()
            except sqlite3.DatabaseError as exc:
                if _has_code(exc, _STORAGE):
                    self._turn_off(exc)
                elif _is_damage(exc) and attempt == 0:
                    self._recover()
                else:
                    raise
        return None

    def get_faces(self, digest: str, backend: str, source: str) -> ImageFaces | None:
        row = self._run(
            "SELECT width, height, faces FROM detections WHERE digest=? AND backend=?",
            (digest, backend),
        )
        if row is None:
            return None
        faces = [Face.from_dict(item) for item in json.loads(row[2])]
        return ImageFaces(source, row[0], row[1], faces)

    def put_faces(self, digest: str, backend: str, result: ImageFaces) -> None:
        faces = json.dumps([face.to_dict() for face in result.faces])
        self._run(
            "INSERT OR REPLACE INTO detections VALUES (?, ?, ?, ?, ?)",
            (digest, backend, result.width, result.height, faces),
            write=True,
        )

    def get_embedding(self, digest: str, backend: str, face_index: int) -> np.ndarray | None:
        row = self._run(
            "SELECT vector FROM embeddings WHERE digest=? AND backend=? AND face_index=?",
            (digest, backend, face_index),
        )
        return None if row is None else np.frombuffer(row[0], dtype=np.float32).copy()

    def put_embedding(self, digest: str, backend: str, face_index: int, vector: np.ndarray) -> None:
        self._run(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
            (digest, backend, face_index, np.asarray(vector, np.float32).tobytes()),
            write=True,
        )

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        removed = 0
        for table in ("detections", "embeddings"):
            cursor = self._run(f"DELETE FROM {table}", write=True)
            removed += cursor.rowcount if cursor is not None else 0
        if self._db is not None:
            self._db.execute("VACUUM")
        return removed

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def check_cache_folder(folder: str | os.PathLike) -> None:
    """A cache folder that exists must be a folder (a file there is a setting to fix)."""
    try:
        mode = Path(folder).expanduser().stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError:
        return  # unusable for another reason: the cache warns and stays off
    if not stat.S_ISDIR(mode):
        raise FaceStudioError(
            f"the face cache folder '{folder}' is {kind_of(mode)}, not a folder; set "
            "FACESTUDIO_CACHE to a folder (or pass --no-cache)"
        )


def damaged_copies(folder: str | os.PathLike) -> list[Path]:
    """Databases set aside as damaged (and their journals) in a cache folder."""
    return sorted(Path(folder).expanduser().glob(f"{DATABASE}.damaged-*"))


_DAMAGE = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_STORAGE = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR)


def _has_code(exc: sqlite3.Error, codes: tuple[int, ...]) -> bool:
    """Whether SQLite's primary result code for `exc` is one of `codes`."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in codes


def remove_damaged_copies(folder: str | os.PathLike) -> int:
    """Delete the databases set aside as damaged; returns how many files were removed."""
    copies = damaged_copies(folder)
    for path in copies:
        path.unlink(missing_ok=True)
    return len(copies)


def _is_damage(exc: sqlite3.Error) -> bool:
    """A file that is not a database, or a corrupt one: not a lock or a permission problem."""
    return _has_code(exc, _DAMAGE)


def _is_healthy(path: Path) -> bool:
    db = sqlite3.connect(path, timeout=60)
    try:
        return db.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
    except sqlite3.DatabaseError as exc:
        if _is_damage(exc):
            return False
        raise
    finally:
        db.close()


@contextmanager
def _folder_lock(folder: Path):
    """An exclusive lock between processes, held on the folder itself (no lock file left)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)
