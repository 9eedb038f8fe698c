"""The one owner of how images become the U-Net's latents and back, for every autoencoder the
pipeline takes.

Autoencoders differ in what they expect and give: diffusers' `AutoencoderKL` returns a
posterior whose mean, times `config.scaling_factor`, is what a U-Net is trained on; the tiny
TAESD-layout autoencoder (`TinyAutoencoder`) returns its latents directly and the U-Net sees
them standardised per channel (`config.latents_mean`, `config.latents_std`). Images are in
[-1, 1] at this interface whatever the network works in. Pipeline, training and evaluation call
`encode` / `decode` / `scale_factor` here and never assume one autoencoder's conventions.
"""

from __future__ import annotations

import torch
from torch import nn

from facestudio.model.tiny_autoencoder import TinyAutoencoder


def scale_factor(vae: nn.Module) -> int:
    """How many image pixels one latent cell spans, per side."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def latent_channels(vae: nn.Module) -> int:
    return int(vae.config.latent_channels)


def encode(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The U-Net's latents of images in [-1, 1], (B, 3, H, W); deterministic (posterior mean)."""
    images = images.to(vae.device, vae.dtype)
    if isinstance(vae, TinyAutoencoder):
        mean, std = _statistics(vae, images)
        return (vae.encode(images).latents - mean) / std
    return vae.encode(images).latent_dist.mean * vae.config.scaling_factor


def decode(vae: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Images in about [-1, 1] (not clamped) from the U-Net's latents."""
    latents = latents.to(vae.device, vae.dtype)
    if isinstance(vae, TinyAutoencoder):
        mean, std = _statistics(vae, latents)
        return vae.decode(latents * std + mean).sample
    return vae.decode(latents / vae.config.scaling_factor).sample


def raw_statistics(vae: TinyAutoencoder, images: torch.Tensor, batch_size: int = 32):
    """Per-channel mean and std of the raw latents of `images` (in [-1, 1]): the values to
    register as `latents_mean` / `latents_std` once, from training data."""
    with torch.no_grad():
        latents = torch.cat(
            [vae.encode(b.to(vae.device, vae.dtype)).latents for b in images.split(batch_size)]
        )
    channels = latents.transpose(0, 1).flatten(1).float()
    return channels.mean(1).tolist(), channels.std(1).tolist()


def _statistics(vae: TinyAutoencoder, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    channels = vae.config.latent_channels
    mean = vae.config.latents_mean or [0.0] * channels
    std = vae.config.latents_std or [1.0] * channels
    shape = (1, channels, 1, 1)
    return (
        torch.tensor(mean, dtype=like.dtype, device=like.device).view(shape),
        torch.tensor(std, dtype=like.dtype, device=like.device).view(shape),
    )
