"""The face cache can be opened by several processes at once (data preparation does)."""

from __future__ import annotations

import multiprocessing

import numpy as np

from facestudio.faces.cache import FaceCache


def _open_and_write(folder: str, worker: int) -> None:
    cache = FaceCache(folder)
    cache.put_embedding(f"digest-{worker}", "backend", 0, np.full(4, worker, np.float32))
    cache.close()


def test_processes_opening_a_new_cache_together_all_succeed(tmp_path):
    context = multiprocessing.get_context("spawn")
    for round_ in range(3):
        folder = str(tmp_path / f"cache-{round_}")
        workers = [context.Process(target=_open_and_write, args=(folder, w)) for w in range(4)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(60)
        assert [p.exitcode for p in workers] == [0, 0, 0, 0]
        cache = FaceCache(folder)
        assert all(cache.get_embedding(f"digest-{w}", "backend", 0)[0] == w for w in range(4))
        cache.close()


def test_a_home_relative_folder_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = FaceCache("~/face-cache")
    assert cache.path == tmp_path / "face-cache" / "faces.sqlite" and cache.path.is_file()
    cache.close()


def _unmarked_cache(folder) -> None:
    """A cache as FaceStudio made it before databases were marked (no application id)."""
    import sqlite3

    from facestudio.faces.cache import _SCHEMA

    folder.mkdir()
    db = sqlite3.connect(folder / "faces.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_SCHEMA)
    db.execute(
        "INSERT INTO embeddings VALUES ('old', 'backend', 0, ?)",
        (np.full(4, 9, np.float32).tobytes(),),
    )
    db.commit()
    db.close()


def test_processes_opening_an_unmarked_cache_together_all_keep_it(tmp_path):
    from facestudio.faces.cache import APPLICATION_ID

    _unmarked_cache(tmp_path / "cache")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_open_and_write, args=(str(tmp_path / "cache"), w)) for w in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    cache = FaceCache(tmp_path / "cache")
    assert cache.get_embedding("old", "backend", 0)[0] == 9
    assert all(cache.get_embedding(f"digest-{w}", "backend", 0)[0] == w for w in range(4))
    cache.close()
    header = (tmp_path / "cache" / "faces.sqlite").read_bytes()[:100]
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID
