"""A persistent cache of detections and embeddings, keyed by image content hash and backend.

Only derived numbers are stored (boxes, landmarks, embeddings), never the photos. It is an
SQLite file, safe to share between processes of one data-preparation run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from facestudio.faces.types import Face, ImageFaces

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
    """Detections and embeddings by (content sha256, backend fingerprint)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder).expanduser() / "faces.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        # Several processes may open a new cache at once; switching it to WAL then fails
        # with "locked" without waiting for the busy timeout, so retry briefly.
        for attempt in range(50):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.1)

    def get_faces(self, digest: str, backend: str, source: str) -> ImageFaces | None:
        row = self._db.execute(
            "SELECT width, height, faces FROM detections WHERE digest=? AND backend=?",
            (digest, backend),
        ).fetchone()
        if row is None:
            return None
        faces = [Face.from_dict(item) for item in json.loads(row[2])]
        return ImageFaces(source, row[0], row[1], faces)

    def put_faces(self, digest: str, backend: str, result: ImageFaces) -> None:
        faces = json.dumps([face.to_dict() for face in result.faces])
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO detections VALUES (?, ?, ?, ?, ?)",
                (digest, backend, result.width, result.height, faces),
            )

    def get_embedding(self, digest: str, backend: str, face_index: int) -> np.ndarray | None:
        row = self._db.execute(
            "SELECT vector FROM embeddings WHERE digest=? AND backend=? AND face_index=?",
            (digest, backend, face_index),
        ).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float32).copy()

    def put_embedding(self, digest: str, backend: str, face_index: int, vector: np.ndarray) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                (digest, backend, face_index, np.asarray(vector, np.float32).tobytes()),
            )

    def clear(self) -> int:
        """Delete everything; returns the number of entries removed."""
        with self._db:
            removed = self._db.execute("DELETE FROM detections").rowcount
            removed += self._db.execute("DELETE FROM embeddings").rowcount
        self._db.execute("VACUUM")
        return removed

    def close(self) -> None:
        self._db.close()
