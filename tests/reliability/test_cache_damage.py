"""The face cache never stops a command: a damaged database of its own is set aside (with a
warning) and rebuilt, `cache --clear` always works on it, an unwritable folder runs without a
cache (with a warning); only FACESTUDIO_CACHE naming something that is not a folder is an error.
(A `faces.sqlite` that is not FaceStudio's is left alone: test_data_safety_cache.py.)"""

from __future__ import annotations

import logging
import os
import sqlite3

import numpy as np
import pytest

from facestudio.faces.cache import FaceCache, damaged_copies
from tests.conftest import shared_file
from tests.reliability.helpers import (
    FACE,
    IS_ROOT,
    assert_refused,
    remount_read_only,
    run,
    small_disk,  # noqa: F401 (a fixture)
)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACESTUDIO_CACHE", str(folder))
    return folder


def _damage(folder, start, end):
    """A real cache with bytes `start`..`end` (from the end, if negative) overwritten (a torn
    write, a bad disk); its 100-byte header, with the cache's mark, is intact."""
    cache = FaceCache(folder)
    for i in range(300):
        cache.put_embedding(f"digest-{i}", "backend", 0, np.full(128, i, np.float32))
    cache.close()
    db = sqlite3.connect(folder / "faces.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray((folder / "faces.sqlite").read_bytes())
    end = end if end > 0 else len(data) + end
    data[start:end] = os.urandom(end - start)
    (folder / "faces.sqlite").write_bytes(bytes(data))


def _schema_page(folder):
    _damage(folder, 100, 4096)


def _corrupt_pages(folder):
    _damage(folder, 4096, -4096)


DAMAGE = {"damaged schema page": _schema_page, "corrupt pages": _corrupt_pages}


@pytest.mark.parametrize("damage", DAMAGE)
def test_faces_sets_a_damaged_cache_aside_and_works(damage, cache_dir, capsys, caplog):
    DAMAGE[damage](cache_dir)
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(capsys, "faces", shared_file(FACE))
        again, out_again, _ = run(capsys, "faces", shared_file(FACE))  # served by the new cache
    assert code == 0 and again == 0 and "1 face(s)" in out and out_again == out
    assert len(damaged_copies(cache_dir)) == 1
    assert sum("set aside" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("damage", DAMAGE)
def test_cache_clear_always_works(damage, cache_dir, capsys):
    DAMAGE[damage](cache_dir)
    code, out, _ = run(capsys, "cache", "--clear")
    assert code == 0 and "removed" in out and "damaged" in out
    assert damaged_copies(cache_dir) == []
    code, out, _ = run(capsys, "cache")
    assert code == 0 and "damaged" not in out


def test_damage_found_by_a_lookup_is_a_miss_and_the_cache_goes_on(tmp_path):
    _corrupt_pages(tmp_path)
    cache = FaceCache(tmp_path)  # the header is fine: only a lookup finds the damage
    assert cache.get_embedding("digest-150", "backend", 0) is None
    cache.put_embedding("new", "backend", 0, np.ones(4, np.float32))
    assert cache.get_embedding("new", "backend", 0) is not None
    assert len(damaged_copies(tmp_path)) == 1
    cache.close()


@pytest.mark.parametrize("command", [["faces", "PHOTO"], ["cache"], ["cache", "--clear"]])
def test_a_cache_setting_naming_a_file_is_one_line(command, cache_dir, capsys):
    cache_dir.write_text("mine")
    args = [str(shared_file(FACE)) if a == "PHOTO" else a for a in command]
    assert_refused(run(capsys, *args), "FACESTUDIO_CACHE", "not a folder")
    assert cache_dir.read_text() == "mine"


def test_a_read_only_cache_folder_runs_without_a_cache(small_disk, monkeypatch, capsys, caplog):  # noqa: F811
    remount_read_only(small_disk)
    monkeypatch.setenv("FACESTUDIO_CACHE", str(small_disk / "cache"))
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(capsys, "faces", shared_file(FACE))
    assert code == 0 and "1 face(s)" in out
    assert any("running without it" in r.getMessage() for r in caplog.records)


def test_a_forbidden_cache_folder_runs_without_a_cache(tmp_path, caplog):
    if IS_ROOT:
        pytest.skip("root may write anywhere; the read-only mount covers this as root")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    with caplog.at_level(logging.WARNING):
        cache = FaceCache(folder / "cache")
    assert not cache.usable and cache.get_embedding("a", "b", 0) is None
    cache.put_embedding("a", "b", 0, np.ones(4, np.float32))  # quietly not kept
