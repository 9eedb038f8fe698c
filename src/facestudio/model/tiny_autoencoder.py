"""A tiny convolutional autoencoder in the layout of TAESD, with TAEF2's global branches.

TAEF2 ("Tiny AutoEncoder for FLUX.2", MIT, Ollin Boer Bohan) is a distillation of FLUX.2's VAE:
32 latent channels at 1/8 of the image size, 1.34 M parameters per half. It keeps what a face
recogniser sees in a 128-px portrait (the model card has the measurements), which is why the
bundled model v2 diffuses in its latent space. diffusers' `AutoencoderTiny` has the TAESD
layout but not the global branch of the FLUX.2 variant, so this module is our own; its
state-dict names are those of the published checkpoints (`encoder.N.conv.*`, `.skip.*`,
`.pool.*`), so converting is a rename of the top-level prefix (recipes/taef2/convert.py).

Interface as diffusers' `AutoencoderTiny`: images in [-1, 1] in and out (the network itself
works in [0, 1]); `encode(x).latents` are the network's raw latents. What the U-Net sees is
standardised per channel with `latents_mean` / `latents_std` (set from training data):
`facestudio.model.latent_space` owns that conversion for every autoencoder the pipeline takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn


@dataclass
class TinyEncoderOutput(BaseOutput):
    latents: torch.Tensor


@dataclass
class TinyDecoderOutput(BaseOutput):
    sample: torch.Tensor


def _conv(channels_in: int, channels_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, padding=1, **kwargs)


class _Clamp(nn.Module):
    """Squashes latents softly into (-limit, limit), as the published decoder does first."""

    def __init__(self, limit: float) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / self.limit) * self.limit


class TinyBlock(nn.Module):
    """Three 3×3 convolutions with ReLUs, plus the input (1×1 projected where widths differ),
    then ReLU. With `global_width`, the input first gets the FLUX.2 variant's branch added:
    1×1 conv up, GroupNorm (statistics over the whole image: the global part), ReLU, 1×1 down."""

    def __init__(self, channels_in: int, channels_out: int, global_width: int = 0) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(channels_in, channels_out),
            nn.ReLU(),
            _conv(channels_out, channels_out),
            nn.ReLU(),
            _conv(channels_out, channels_out),
        )
        self.skip = (
            nn.Conv2d(channels_in, channels_out, 1, bias=False)
            if channels_in != channels_out
            else nn.Identity()
        )
        self.pool = None
        if global_width:
            self.pool = nn.Sequential(
                nn.Conv2d(channels_in, global_width, 1, bias=False),
                nn.GroupNorm(4, global_width),
                nn.ReLU(),
                nn.Conv2d(global_width, channels_in, 1, bias=False),
            )
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def _encoder(width: int, latent_channels: int, stages: int, blocks: int, global_width: int):
    layers: list[nn.Module] = [_conv(3, width), TinyBlock(width, width)]
    for stage in range(stages):
        last = stage == stages - 1
        layers.append(_conv(width, width, stride=2, bias=False))
        layers += [TinyBlock(width, width, global_width if last else 0) for _ in range(blocks)]
    layers.append(_conv(width, latent_channels))
    return nn.Sequential(*layers)


def _decoder(width: int, latent_channels: int, stages: int, blocks: int, global_width: int):
    layers: list[nn.Module] = [_Clamp(3.0), _conv(latent_channels, width), nn.ReLU()]
    for stage in range(stages):
        first = stage == 0
        layers += [TinyBlock(width, width, global_width if first else 0) for _ in range(blocks)]
        layers += [nn.Upsample(scale_factor=2), _conv(width, width, bias=False)]
    layers += [TinyBlock(width, width), _conv(width, 3)]
    return nn.Sequential(*layers)


class TinyAutoencoder(ModelMixin, ConfigMixin):
    """TAESD-layout autoencoder (TAEF2 with `global_width=256`).

    Args:
        latent_channels: channels of the latent (32 for TAEF2).
        width: channels inside both halves.
        stages: downsampling stages; the latent is 2**stages times smaller than the image.
        blocks_per_stage: residual blocks after each (de)sampling step.
        global_width: width of the global branch in the lowest-resolution blocks (0: none,
            the SD/SDXL/FLUX.1 TAESDs).
        latents_mean, latents_std: per-channel statistics of the raw latents over training
            data; the U-Net works on `(latents - mean) / std` (see `model.latent_space`).
        block_out_channels: one entry per resolution level, for code that reads the scale
            factor as diffusers' autoencoders declare it (`2 ** (len - 1)`).
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 32,
        width: int = 64,
        stages: int = 3,
        blocks_per_stage: int = 3,
        global_width: int = 256,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
        block_out_channels: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.register_to_config(block_out_channels=(width,) * (stages + 1))
        self.encoder = _encoder(width, latent_channels, stages, blocks_per_stage, global_width)
        self.decoder = _decoder(width, latent_channels, stages, blocks_per_stage, global_width)

    def encode(self, images: torch.Tensor) -> TinyEncoderOutput:
        """Raw latents of images in [-1, 1], (B, 3, H, W) with H and W divisible by 2**stages."""
        return TinyEncoderOutput(latents=self.encoder(images.add(1).div(2)))

    def decode(self, latents: torch.Tensor) -> TinyDecoderOutput:
        """Images in about [-1, 1] from raw latents (not clamped: the caller decides)."""
        return TinyDecoderOutput(sample=self.decoder(latents).mul(2).sub(1))

    def forward(self, images: torch.Tensor) -> TinyDecoderOutput:
        return self.decode(self.encode(images).latents)
