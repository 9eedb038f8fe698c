"""The face cache uses, sets aside and deletes only its own database: one it cannot recognise
(a user's text file, another application's SQLite database, a link, a FIFO) is left exactly as
it is, and commands run without a cache, with a warning; `cache` and `cache --clear` refuse it
in one line. `--clear` deletes only regular files it recognises, never through a link."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from facestudio.faces.cache import FaceCache
from tests.conftest import shared_file
from tests.reliability.helpers import FACE, assert_refused, fifo, run


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("FACESTUDIO_CACHE", str(folder))
    return folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry of a folder (not following links) and what it is or holds."""
    found = {}
    for entry in sorted(folder.rglob("*")):
        if entry.is_symlink():
            found[str(entry.relative_to(folder))] = f"link to {os.readlink(entry)}"
        elif entry.is_file():
            found[str(entry.relative_to(folder))] = _digest(entry)
        else:
            found[str(entry.relative_to(folder))] = "folder" if entry.is_dir() else "node"
    return found


def _users_database(path: Path) -> Path:
    """Another application's database that happens to have a table named `detections`."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE detections (id INTEGER PRIMARY KEY, what TEXT)")
    db.execute("CREATE TABLE notes (text TEXT)")
    db.executemany("INSERT INTO detections (what) VALUES (?)", [("bird",), ("plane",)])
    db.execute("INSERT INTO notes VALUES ('keep me')")
    db.commit()
    db.close()
    return path


def _text_file(folder: Path) -> None:
    (folder / "faces.sqlite").write_text("my notes, not a database\n" * 50)


def _own_database(folder: Path) -> None:
    _users_database(folder / "faces.sqlite")


def _link_to_another_database(folder: Path) -> None:
    other = _users_database(folder.parent / "other-app.sqlite")
    os.symlink(other, folder / "faces.sqlite")


def _foreign_application_id(folder: Path) -> None:
    db = sqlite3.connect(_users_database(folder / "faces.sqlite"))
    db.execute("PRAGMA application_id = 1196444237")  # another program's mark
    db.commit()
    db.close()


def _a_fifo(folder: Path) -> None:
    fifo(folder / "faces.sqlite")


def _link_as_journal(folder: Path) -> None:
    """Our own cache whose write-ahead log is a link into another application's file."""
    FaceCache(folder).close()
    (folder.parent / "precious.txt").write_text("another application's data")
    os.symlink(folder.parent / "precious.txt", folder / "faces.sqlite-wal")


NOT_OURS = {
    "a user's text file": _text_file,
    "a user's own SQLite database": _own_database,
    "a link to another application's database": _link_to_another_database,
    "another application's application_id": _foreign_application_id,
    "a FIFO": _a_fifo,
    "a link as its journal": _link_as_journal,
}


@pytest.mark.parametrize("case", NOT_OURS)
def test_a_database_that_is_not_ours_is_left_alone_and_faces_still_works(
    case, cache_dir, capsys, caplog
):
    NOT_OURS[case](cache_dir)
    before = _snapshot(cache_dir.parent)
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(capsys, "faces", shared_file(FACE))
    assert code == 0 and "1 face(s)" in out
    assert _snapshot(cache_dir.parent) == before  # not renamed, not changed, nothing added
    warnings = [r.getMessage() for r in caplog.records if "not FaceStudio's" in r.getMessage()]
    assert len(warnings) == 1 and "FACESTUDIO_CACHE" in warnings[0]


@pytest.mark.parametrize("case", NOT_OURS)
@pytest.mark.parametrize("command", [["cache"], ["cache", "--clear"]])
def test_cache_commands_refuse_a_database_that_is_not_ours(case, command, cache_dir, capsys):
    NOT_OURS[case](cache_dir)
    before = _snapshot(cache_dir.parent)
    assert_refused(run(capsys, *command), "not FaceStudio's", "FACESTUDIO_CACHE")
    assert _snapshot(cache_dir.parent) == before


def test_a_users_database_keeps_its_rows_tables_and_journal_mode(cache_dir, capsys):
    _own_database(cache_dir)
    run(capsys, "faces", shared_file(FACE))
    run(capsys, "cache", "--clear")
    db = sqlite3.connect(cache_dir / "faces.sqlite")
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master ORDER BY name")]
    assert tables == ["detections", "notes"]
    assert db.execute("SELECT count(*) FROM detections").fetchone()[0] == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()


def test_clear_leaves_a_folder_named_like_a_set_aside_copy(cache_dir, capsys):
    FaceCache(cache_dir).close()
    folder = cache_dir / "faces.sqlite.damaged-x"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"a photo")
    code, out, err = run(capsys, "cache", "--clear")
    assert code == 0 and "Traceback" not in err, err
    assert "left 1" in out and (folder / "holiday.jpg").read_bytes() == b"a photo"


def test_clear_deletes_only_set_aside_copies_it_recognises(cache_dir, capsys):
    """Ours (by its mark) is deleted; a user's file set aside by an older version, a link to a
    user's file, and a folder stay."""
    FaceCache(cache_dir).close()
    ours = cache_dir / "faces.sqlite.damaged-20240101-120000-7"
    ours.write_bytes((cache_dir / "faces.sqlite").read_bytes())
    users = cache_dir / "faces.sqlite.damaged-20240101-120000-8"
    users.write_text("a user's text, set aside by an older FaceStudio")
    (cache_dir.parent / "precious.sqlite").write_bytes(ours.read_bytes())
    os.symlink(cache_dir.parent / "precious.sqlite", cache_dir / "faces.sqlite.damaged-1-2-3")
    code, out, _ = run(capsys, "cache", "--clear")
    assert code == 0 and "1 damaged file(s)" in out and "left 2" in out
    assert not ours.exists() and users.exists()
    assert (cache_dir / "faces.sqlite.damaged-1-2-3").is_symlink()
    assert (cache_dir.parent / "precious.sqlite").is_file()


def test_a_cache_made_before_the_mark_is_recognised_and_kept(cache_dir, capsys):
    """A database with exactly our tables and no application id was made by an older FaceStudio:
    it is used (its entries kept) and marked."""
    db = sqlite3.connect(cache_dir / "faces.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(
        "CREATE TABLE IF NOT EXISTS detections (\n"
        "    digest TEXT, backend TEXT, width INTEGER, height INTEGER, faces TEXT,\n"
        "    PRIMARY KEY (digest, backend));\n"
        "CREATE TABLE IF NOT EXISTS embeddings (\n"
        "    digest TEXT, backend TEXT, face_index INTEGER, vector BLOB,\n"
        "    PRIMARY KEY (digest, backend, face_index));\n"
    )
    vector = np.arange(4, dtype=np.float32)
    db.execute("INSERT INTO embeddings VALUES ('d', 'b', 0, ?)", (vector.tobytes(),))
    db.commit()
    db.close()
    from facestudio.faces.cache import APPLICATION_ID

    cache = FaceCache(cache_dir)
    assert cache.usable and np.array_equal(cache.get_embedding("d", "b", 0), vector)
    cache.close()
    db = sqlite3.connect(cache_dir / "faces.sqlite")
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()
    code, out, _ = run(capsys, "cache", "--clear")
    assert code == 0 and "removed 1 entries" in out


def test_a_new_cache_carries_the_mark(tmp_path):
    from facestudio.faces.cache import APPLICATION_ID

    FaceCache(tmp_path).close()
    header = (tmp_path / "faces.sqlite").read_bytes()[:100]
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID
