"""The pipeline on the tiny TAESD-layout autoencoder: generation, image-to-image and loading
go through `model.latent_space`, not through AutoencoderKL's conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facestudio.model.components import random_components
from facestudio.model.tiny_autoencoder import TinyAutoencoder
from facestudio.pipeline import FaceStudioPipeline


@pytest.fixture(scope="module")
def tiny_ae_pipeline() -> FaceStudioPipeline:
    components = random_components()
    torch.manual_seed(1)
    components["vae"] = TinyAutoencoder(
        latent_channels=4,
        width=8,
        stages=3,
        blocks_per_stage=1,
        global_width=16,
        latents_mean=[0.1, -0.2, 0.0, 0.3],
        latents_std=[0.5, 2.0, 1.0, 1.5],
    )
    pipeline = FaceStudioPipeline(**components)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_generates_saves_and_loads_with_the_tiny_autoencoder(tiny_ae_pipeline, tmp_path):
    face = np.random.default_rng(0).normal(size=128).astype(np.float32)
    kwargs = dict(identities=[face], num_inference_steps=2, seed=3, output_type="np")
    first = tiny_ae_pipeline(**kwargs).images
    assert first.shape == (1, 64, 64, 3)
    tiny_ae_pipeline.save_pretrained(tmp_path)
    loaded = FaceStudioPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.vae, TinyAutoencoder)
    assert loaded.vae.config.latents_std == [0.5, 2.0, 1.0, 1.5]
    np.testing.assert_array_equal(loaded(**kwargs).images, first)


def test_image_to_image_starts_from_the_standardised_latents(tiny_ae_pipeline):
    """At strength ~0 the output is the content image's own round trip through the autoencoder."""
    content = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    out = tiny_ae_pipeline(
        image=content, strength=0.01, num_inference_steps=100, seed=0, output_type="np"
    ).images[0]
    pixels = torch.from_numpy(content.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        rebuilt = tiny_ae_pipeline.vae(pixels).sample.clamp(-1, 1)
    expected = ((rebuilt[0].permute(1, 2, 0).numpy() + 1) * 127.5).round()
    assert np.abs(out.astype(float) - expected).mean() < 3.0
