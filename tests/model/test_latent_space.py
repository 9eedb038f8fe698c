"""One conversion between images and the U-Net's latents for either autoencoder."""

from __future__ import annotations

import torch

from facestudio.model import latent_space
from facestudio.model.components import random_components
from facestudio.model.tiny_autoencoder import TinyAutoencoder


def _tiny(**config) -> TinyAutoencoder:
    torch.manual_seed(0)
    return TinyAutoencoder(
        latent_channels=4, width=8, stages=3, blocks_per_stage=1, global_width=16, **config
    ).eval()


def test_tiny_latents_are_standardised_with_the_registered_statistics():
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    plain = _tiny()
    mean, std = latent_space.raw_statistics(plain, images)
    standardised = _tiny(latents_mean=mean, latents_std=std)
    with torch.no_grad():
        latents = latent_space.encode(standardised, images)
    per_channel = latents.transpose(0, 1).flatten(1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1), torch.ones(4), atol=1e-4, rtol=0)
    with torch.no_grad():  # decoding undoes the standardisation: the network's own round trip
        torch.testing.assert_close(
            latent_space.decode(standardised, latents), standardised(images).sample
        )


def test_kl_autoencoder_keeps_its_scaling_factor():
    vae = random_components()["vae"].eval()
    vae.register_to_config(scaling_factor=0.5)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        latents = latent_space.encode(vae, images)
        torch.testing.assert_close(latents, vae.encode(images).latent_dist.mean * 0.5)
        torch.testing.assert_close(latent_space.decode(vae, latents), vae.decode(latents / 0.5).sample)
    assert latent_space.scale_factor(vae) == 8 == latent_space.scale_factor(_tiny())
