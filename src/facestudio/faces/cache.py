"""A persistent cache of detections and embeddings, keyed by image content hash and backend.

Only derived numbers are stored (boxes, landmarks, embeddings), never the photos. It is an
SQLite file, safe to share between processes of one data-preparation run.

The database carries FaceStudio's mark, SQLite's `application_id`, and the cache uses, sets
aside or clears only a database with that mark (or one made before the mark: exactly the
cache's tables and no application id, which is then marked). Anything else named
`faces.sqlite` (a user's file, another application's database, a link, a FIFO) is never
written, renamed or deleted: commands run without a cache and say so.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import stat
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facestudio.errors import FaceStudioError
from facestudio.faces.types import Face, ImageFaces
from facestudio.files import NotAFile, kind_of, read_own_file

DATABASE = "faces.sqlite"
APPLICATION_ID = 0x46534643  # "FSFC", FaceStudio face cache: SQLite's header, bytes 68-71
_LOG_SUFFIXES = ("-wal", "-shm", "-journal")  # SQLite's files beside a database
_SQLITE = b"SQLite format 3\x00"
_SET_ASIDE = re.compile(rf"^{re.escape(DATABASE)}\.damaged-\d{{8}}-\d{{6}}-\d+$")
_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS detections (
    digest TEXT, backend TEXT, width INTEGER, height INTEGER, faces TEXT,
    PRIMARY KEY (digest, backend));
CREATE TABLE IF NOT EXISTS embeddings (
    digest TEXT, backend TEXT, face_index INTEGER, vector BLOB,
    PRIMARY KEY (digest, backend, face_index));
"""


class ForeignCache(FaceStudioError):
    """The `faces.sqlite` found is not FaceStudio's: it is left exactly as it is."""


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
    database of its own is set aside (renamed `faces.sqlite.damaged-<time>-<pid>`, with a
    warning) and rebuilt; a database that is not its own, or a folder that cannot be written
    (read-only, no permission), runs without a cache, with a warning. Only a cache folder that
    is not a folder at all is an error: that is a setting to fix. With `strict` (the `cache`
    command), a database that is not its own is an error too.
    """

    def __init__(self, folder: str | os.PathLike, strict: bool = False) -> None:
        self.folder = Path(folder).expanduser()
        self.path = self.folder / DATABASE
        self.strict = strict
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
            with _folder_lock(self.folder):
                self._db = self._open()
        except (ForeignCache, OSError, sqlite3.OperationalError) as exc:
            self._turn_off(exc)

    def _turn_off(self, exc: Exception) -> None:
        if isinstance(exc, ForeignCache) and self.strict:
            raise exc
        if self._db is not None:
            self._db.close()
        self._db = None
        if isinstance(exc, ForeignCache):
            _log.warning("%s; running without a cache", exc)
            return
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
            with _folder_lock(self.folder):
                # Another process may have set it aside already, and made a new one.
                if _recognise(self.path) == "ours" and not _is_healthy(self.path):
                    self._set_aside()
                self._db = self._open()
        except (ForeignCache, OSError, sqlite3.OperationalError) as exc:
            self._turn_off(exc)

    def _open(self) -> sqlite3.Connection:
        """Our database, made or marked if need be (the caller holds the folder lock). A
        damaged one of ours is set aside; one we cannot recognise raises `ForeignCache`."""
        state = _recognise(self.path)
        try:
            return self._connect(state)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            if state != "ours":
                raise _foreign(
                    self.path, "an unmarked SQLite database that cannot be read"
                ) from None
        self._set_aside()
        return self._connect("missing")

    def _connect(self, state: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            if state != "ours":
                _adopt(db, self.path)  # refuses other tables before writing anything
            _write_ahead_log(db)
            return db
        except BaseException:
            db.close()
            raise

    def _set_aside(self) -> None:
        """Rename our damaged database out of the way (the caller holds the folder lock)."""
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


def remove_damaged_copies(folder: str | os.PathLike) -> tuple[int, list[Path]]:
    """Delete the databases this cache set aside as damaged, with their journals: regular files
    named as it names them and carrying its mark (never through a link). Returns how many files
    were removed, and the entries named like set-aside copies that were left (not recognised)."""
    removed: list[Path] = []
    for path in damaged_copies(folder):
        if _SET_ASIDE.match(path.name) and _is_marked_file(path):
            for file in [path, *(Path(f"{path}{suffix}") for suffix in _LOG_SUFFIXES)]:
                if _is_regular(file):
                    file.unlink()
                    removed.append(file)
    return len(removed), [p for p in damaged_copies(folder) if p not in removed]


def _recognise(path: Path) -> str:
    """What `path` holds: "missing", "empty" (a new database), "ours" (our mark in its header)
    or "unmarked" (an SQLite database without an application id: `_adopt` judges its tables).
    Anything else raises `ForeignCache`, before SQLite opens it."""
    for suffix in _LOG_SUFFIXES:
        journal = Path(f"{path}{suffix}")
        if os.path.lexists(journal) and not _is_regular(journal):
            mode = os.lstat(journal).st_mode
            raise _foreign(path, f"its journal '{journal.name}' is {kind_of(mode)}")
    try:
        header = read_own_file(path, length=100)
    except FileNotFoundError:
        return "missing"
    except NotAFile as exc:
        raise _foreign(path, str(exc)) from None
    if not header:
        return "empty"
    if not header.startswith(_SQLITE) or len(header) < 100:
        raise _foreign(path, "not an SQLite database")
    mark = int.from_bytes(header[68:72], "big")
    if mark == APPLICATION_ID:
        return "ours"
    if mark == 0:
        return "unmarked"
    raise _foreign(path, f"another application's SQLite database, application_id {mark:#x}")


def _adopt(db: sqlite3.Connection, path: Path) -> None:
    """Make a new database ours, or mark one made before the mark: only when it holds no
    tables or exactly ours, checked and written in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        tables = _objects(db)
        if tables and tables != _our_objects():
            raise _foreign(path, "an SQLite database with other tables")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _objects(db: sqlite3.Connection) -> list[tuple]:
    return db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    ).fetchall()


def _our_objects() -> list[tuple]:
    """What `sqlite_master` lists for exactly the cache's tables (made in memory)."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        return _objects(db)
    finally:
        db.close()


def _write_ahead_log(db: sqlite3.Connection) -> None:
    # Several processes may open a new cache at once; switching it to WAL then fails with
    # "locked" without waiting for the busy timeout, so retry briefly.
    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _has_code(exc, _BUSY) or attempt == 49:
                raise
            time.sleep(0.1)


def _foreign(path: Path, what: str) -> ForeignCache:
    return ForeignCache(
        f"'{path}' is not FaceStudio's face cache ({what}); it is left as it is: move it away, "
        "or set FACESTUDIO_CACHE to another folder"
    )


def _is_marked_file(path: Path) -> bool:
    """A regular file (not a link) whose SQLite header carries our mark."""
    try:
        header = read_own_file(path, length=100)
    except (OSError, NotAFile):
        return False
    return header.startswith(_SQLITE) and header[68:72] == APPLICATION_ID.to_bytes(4, "big")


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


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
