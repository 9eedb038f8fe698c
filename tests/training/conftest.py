"""Fixtures for training tests: a small prepared data set of real photos, and a config."""

from __future__ import annotations

import pytest

from facestudio.data.prepare import PrepareConfig, prepare, write_index
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.training.config import config_from_dict
from tests.conftest import shared_file

PHOTOS = [
    "deepface/id03/img3.jpg",
    "deepface/id03/img12.jpg",
    "deepface/id04/img16.jpg",
    "deepface/id04/img17.jpg",
    "deepface/id05/img13.jpg",
    "deepface/id05/img14.jpg",
    "deepface/id06/img29.jpg",
    "deepface/id06/img30.jpg",
]


@pytest.fixture(scope="session")
def eight_photos_prepared(tmp_path_factory, face_cache):
    source = tmp_path_factory.mktemp("eight-photos")
    for i, photo in enumerate(PHOTOS):
        (source / f"{i}.jpg").write_bytes(shared_file(f"data/{photo}").read_bytes())
    out = tmp_path_factory.mktemp("prepared")
    analyzer = FaceAnalyzer(FaceAnalyzerConfig(cache_dir=face_cache))
    config = PrepareConfig(resolution=64, shard_size=4)
    prepare([str(source)], out, analyzer, config, progress=False)
    write_index(out, config, analyzer)
    return out


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState, PartialState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()


def tiny_config(output_dir, data, **train):
    settings = dict(
        batch_size=8,
        learning_rate=1e-3,
        max_steps=40,
        style_dropout=0.0,
        face_dropout=0.0,
        allow_untrained_frozen=True,  # random tiny models: the code path, not the images
    )
    settings.update(train)
    return config_from_dict(
        {
            "output_dir": str(output_dir),
            "data": {"path": str(data)},
            "train": settings,
            "checkpoints": {"every_steps": 1000, "keep_last": 2},
            "logging": {"every_steps": 1000},
        }
    )
