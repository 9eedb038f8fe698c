"""recipes/identity_loss/gpu/ablation.py: what it hands each arm and what it brings back.
(Its whole path, training included, runs on the CPU with --smoke; too slow for the suite.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from facestudio.training.config import load_config

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "identity_loss" / "gpu" / "ablation.py"


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_pair_of_arms_differs_only_in_its_identity_loss(ablation, tmp_path):
    for base, identity in ablation.PAIRS.values():
        configs = [
            json.loads(ablation.arm_config(name, tmp_path, smoke=False).read_text())
            for name in (base, identity)
        ]
        for config in configs:
            config.pop("output_dir")
            config["train"] = {
                k: v for k, v in config["train"].items() if not k.startswith("identity_")
            }
        assert configs[0] == configs[1]


def test_arm_configs_load_and_point_at_the_device_paths(ablation, tmp_path):
    for name in (arm for pair in ablation.PAIRS.values() for arm in pair):
        for smoke in (False, True):
            config = load_config(ablation.arm_config(name, tmp_path, smoke))
            assert config.output_dir == str(tmp_path / name)
            assert Path(config.model.pipeline) == ablation.BUNDLED
            assert config.data.path == str(tmp_path / "data")
            assert (config.train.batch_size == 2) == smoke


def test_parts_rejoin_to_the_archive_and_arms_keep_what_they_changed(ablation, tmp_path):
    archive = tmp_path / "arms.tar"
    archive.write_bytes(bytes(range(256)) * 1000)
    out = tmp_path / "out"
    out.mkdir()
    ablation._split(archive, out, part_bytes=100_000)
    parts = sorted(out.iterdir())
    assert [p.name for p in parts] == ["arms.tar.00", "arms.tar.01", "arms.tar.02"]
    assert b"".join(p.read_bytes() for p in parts) == archive.read_bytes()
    assert ablation._returned("decoder", Path("vae/diffusion_pytorch_model.safetensors"))
    assert not ablation._returned("decoder", Path("unet/config.json"))
    assert ablation._returned("diffusion", Path("unet/config.json"))
    assert not ablation._returned("diffusion", Path("vae/config.json"))
