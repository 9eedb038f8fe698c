"""The TAESD-layout autoencoder: the published TAEF2 weights load into it and reconstruct real
photos as the published network does; it saves and loads as a pipeline component."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facestudio.model.tiny_autoencoder import TinyAutoencoder
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[2]


def _converter():
    spec = importlib.util.spec_from_file_location("convert", ROOT / "recipes/taef2/convert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lfw_photos(count: int) -> list[Path]:
    folder = shared_file("data/lfw")
    return sorted(folder.glob("*/*.jpg"))[:count]


@pytest.mark.slow
def test_published_taef2_reconstructs_photos_as_published():
    """36 dB on LFW at 256 px is the published network's quality; a wrong layout (a missing
    global branch, a misplaced block) loads strictly but falls far below it."""
    convert = _converter()
    model = convert.load_published(shared_file("models/taef2"))
    psnr = convert.round_trip_psnr(model, [str(p) for p in _lfw_photos(8)])
    assert psnr > 34.0
    crippled = convert.load_published(shared_file("models/taef2"))
    for block in crippled.decoder:
        if getattr(block, "pool", None) is not None:
            torch.nn.init.zeros_(block.pool[3].weight)
    assert convert.round_trip_psnr(crippled, [str(p) for p in _lfw_photos(8)]) < psnr - 3


@pytest.mark.slow
def test_converted_folder_loads_with_the_same_outputs_and_keeps_the_licence(tmp_path):
    convert = _converter()
    model = convert.load_published(shared_file("models/taef2"))
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = TinyAutoencoder.from_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.bin")) and list(tmp_path.glob("*.safetensors"))
    picture = Image.open(_lfw_photos(1)[0]).convert("RGB").resize((128, 128))
    image = torch.from_numpy(np.asarray(picture, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(image).sample, model(image).sample)
        latents = loaded.encode(image).latents
    assert latents.shape == (1, 32, 16, 16)


def test_shapes_and_scale_factor_follow_the_config():
    model = TinyAutoencoder(latent_channels=4, width=8, stages=2, blocks_per_stage=1, global_width=16)
    assert tuple(model.config.block_out_channels) == (8, 8, 8)
    with torch.no_grad():
        latents = model.encode(torch.zeros(2, 3, 32, 32)).latents
        assert latents.shape == (2, 4, 8, 8)
        assert model.decode(latents).sample.shape == (2, 3, 32, 32)
