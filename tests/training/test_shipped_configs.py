"""The example configurations in configs/train load without errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from facestudio.training.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "train").glob("*.toml")) + sorted(
    (ROOT / "recipes").rglob("*.toml")
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_is_valid(path):
    config = load_config(path)
    assert config.output_dir and config.data.path


def test_there_are_examples():
    assert len(CONFIGS) >= 5
