"""The example configurations in configs/train and the recipes load and describe a trainable
run, and every config the bundled model's recipe names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facestudio.training.config import component_sizes, load_config
from facestudio.training.objectives import Objective

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "train").glob("*.toml")) + sorted(
    (ROOT / "recipes").rglob("*.toml")
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_is_valid(path):
    config = load_config(path)
    assert config.output_dir and config.data.path
    Objective.lookup(config.train.target).check(config)
    if config.model.init == "random":
        assert component_sizes(config.model).num_tokens == config.model.num_tokens


def test_every_config_the_documentation_names_is_shipped():
    recipe = (ROOT / "recipes" / "bundled_model" / "README.md").read_text()
    named = set(re.findall(r"([\w-]+\.toml)", recipe))
    assert {"autoencoder.toml", "diffusion.toml", "decoder.toml", "diffusion-gpu.toml"} <= named
    assert named <= {p.name for p in (ROOT / "recipes" / "bundled_model").glob("*.toml")}
    guide = (ROOT / "docs" / "training.md").read_text()
    for name in re.findall(r"configs/train/([\w-]+\.toml)", guide):
        assert (ROOT / "configs" / "train" / name).is_file(), name
