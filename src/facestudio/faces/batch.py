"""Analysing many photos, in several processes: one `FaceAnalyzer` per worker process."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig


@dataclass(frozen=True)
class FileIdentity:
    """The result for one photo: an embedding and its face, or why there is none."""

    path: str
    embedding: np.ndarray | None
    faces_found: int
    error: str | None = None


_worker: FaceAnalyzer | None = None


def _init_worker(config: FaceAnalyzerConfig) -> None:
    global _worker
    # Each process runs single-threaded: the processes are the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"
    _worker = FaceAnalyzer(config)


def _identity_of(path: str) -> FileIdentity:
    return identity_of_file(_worker, path)


def identity_of_file(analyzer: FaceAnalyzer, path: str) -> FileIdentity:
    try:
        identity = analyzer.identity(path)
    except FaceStudioError as exc:
        return FileIdentity(path, None, 0, str(exc))
    return FileIdentity(path, identity.embedding, identity.faces_in_photo)


def identities_of_files(
    config: FaceAnalyzerConfig,
    paths: Sequence[str],
    workers: int = 1,
    progress: bool = True,
) -> list[FileIdentity]:
    """The largest face's identity of each photo, in order; failures are reported, not raised."""
    bar = tqdm(
        total=len(paths),
        desc="embedding",
        unit="image",
        disable=not progress or None,
        file=sys.stderr,
    )
    results = []
    if workers <= 1:
        analyzer = FaceAnalyzer(config)
        for path in paths:
            results.append(identity_of_file(analyzer, path))
            bar.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(config,)) as pool:
            for result in pool.map(_identity_of, paths, chunksize=8):
                results.append(result)
                bar.update()
    bar.close()
    return results
