"""Prepared folders written through the shard schema, for tests that need data but no faces."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

from facestudio.data import samples


def write_prepared(folder: Path, count: int = 8, faceless: tuple[int, ...] = ()) -> Path:
    """`count` random 64-px samples (128-d embeddings) in one shard; `faceless` have no face."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with tarfile.open(folder / "shard-00000.tar", "w") as archive:
        for i in range(count):
            image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            if i in faceless:
                sample = samples.PreparedSample(image, image, {"face_present": False})
            else:
                meta = {"box": [16.0, 8.0, 48.0, 40.0], "landmarks": [[24.0, 20.0]] * 5}
                sample = samples.PreparedSample(image, image, meta, rng.normal(size=128))
            samples.add_sample(archive, samples.sample_key(i), samples.encode_sample(sample))
    index = {
        "format": samples.FORMAT,
        "shards": [{"name": "shard-00000.tar", "samples": count}],
        "prepare": {"resolution": 64},
        "embedding_dim": 128,
    }
    (folder / samples.INDEX).write_text(json.dumps(index))
    return folder
