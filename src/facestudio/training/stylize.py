"""Stylised training samples: styles that carry.

The paper trains on varied images; ours are news photos, so a style image that is a sketch or
a painting asks for something the model never reconstructed. Each sample here gets one
stylised twin: the portrait and its face-masked style input go through the same stylisation
(so the style input shows the style, and the target shows it applied to the whole picture),
while the identity input stays the embedding of the unstylised photo. Training on a share of
twins teaches the U-Net to carry the style input's look onto the person it is given.

The style of a sample is fixed by its index (reproducible, resumable, and encodable once):
`STYLES[index % len(STYLES)]`, with the style's own parameters (a colour cast's hue, a colour
transfer's source) drawn from a generator seeded by the index.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from facestudio.model import latent_space
from facestudio.training.latent_cache import batches, fingerprint, stored_tables

Stylize = Callable[[np.ndarray, np.random.Generator, np.ndarray | None], np.ndarray]
"""(RGB uint8 image, generator, palette) -> RGB uint8; the palette (another sample's portrait)
is given to the colour transfer only."""


def _cartoon(image, rng, palette):
    return cv2.stylization(image, sigma_s=60, sigma_r=0.45)


def _pencil(image, rng, palette):
    grey, _ = cv2.pencilSketch(image, sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def _colour_pencil(image, rng, palette):
    return cv2.pencilSketch(image, sigma_s=60, sigma_r=0.07, shade_factor=0.05)[1]


def _painted(image, rng, palette):
    """Flat, edge-preserving colour regions with boosted saturation: a painting-like look."""
    smooth = cv2.edgePreservingFilter(image, flags=1, sigma_s=60, sigma_r=0.4)
    hsv = cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.6, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _greyscale(image, rng, palette):
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def _sepia(image, rng, palette):
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return np.clip(image.astype(np.float32) @ matrix.T, 0, 255).astype(np.uint8)


def _colour_cast(image, rng, palette):
    """A strong tint of a random hue, as from a coloured light or a filter."""
    hue = rng.uniform(0, 2 * np.pi)
    tint = 0.5 + 0.5 * np.cos(hue + np.array([0.0, 2.0944, 4.1888]))
    mixed = 0.55 * image.astype(np.float32) + 0.45 * 255 * tint * (
        image.mean(-1, keepdims=True) / 255
    )
    return np.clip(mixed * 1.3, 0, 255).astype(np.uint8)


def _colour_transfer(image, rng, palette):
    """Reinhard colour transfer: the image takes another picture's mean and spread in Lab."""
    source = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    target = cv2.cvtColor(palette, cv2.COLOR_RGB2LAB).astype(np.float32)
    mean_s, std_s = source.mean((0, 1)), source.std((0, 1)) + 1e-3
    mean_t, std_t = target.mean((0, 1)), target.std((0, 1)) + 1e-3
    moved = (source - mean_s) * (std_t / std_s) + mean_t
    return cv2.cvtColor(np.clip(moved, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


STYLES: dict[str, Stylize] = {
    "cartoon": _cartoon,
    "pencil": _pencil,
    "colour_pencil": _colour_pencil,
    "painted": _painted,
    "greyscale": _greyscale,
    "sepia": _sepia,
    "colour_cast": _colour_cast,
    "colour_transfer": _colour_transfer,
}


def style_of(index: int) -> str:
    """The style of sample `index`'s twin."""
    return list(STYLES)[index % len(STYLES)]


def stylize_pair(
    image: np.ndarray, style: np.ndarray, index: int, palette: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The portrait and its style input through the same stylisation (the same parameters)."""
    apply = STYLES[style_of(index)]
    return (
        apply(image, np.random.default_rng(index), palette),
        apply(style, np.random.default_rng(index), palette),
    )


class StylisedView(torch.utils.data.Dataset):
    """A prepared data set's samples with image and style input replaced by their stylised
    twins (identity, face box and index unchanged). `cache_name` keeps its latents apart from
    the plain ones in a run folder (training/latent_cache.py)."""

    cache_name = "latents-stylised.safetensors"

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.index = dataset.index
        self.resolution = dataset.resolution

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        image, style = stylize_pair(
            _uint8((item["image"] + 1) / 2),
            _uint8(item["style_pixels"]),
            index,
            self._palette(index),
        )
        return {
            **item,
            "image": torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0,
            "style_pixels": torch.from_numpy(style).permute(2, 0, 1).float() / 255.0,
        }

    def _palette(self, index: int) -> np.ndarray | None:
        """Another sample's portrait, read only for the style that takes its colours."""
        if style_of(index) != "colour_transfer":
            return None
        partner = self.dataset[(index * 7919 + 1) % len(self.dataset)]
        return _uint8((partner["image"] + 1) / 2)


class StylisedTwins:
    """Every sample's stylised twin, as training uses it: its latents and style input, made
    once (minutes) and kept in the run folder beside the plain latents."""

    def __init__(self, vae, dataset, folder, write: bool) -> None:
        view = StylisedView(dataset)
        tables = stored_tables(
            folder, view.cache_name, fingerprint(vae, view), lambda: _make(vae, view), write
        )
        self.latents, self.style = tables["latents"], tables["style"]

    def apply(
        self, batch: dict, latents: torch.Tensor, probability: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents, style_pixels) of `batch` with each sample, with `probability`, replaced by
        its twin's. Draws B numbers whatever happens (exact resume)."""
        use = torch.rand(len(latents), generator=generator) < probability
        index = batch["index"].cpu()[use]
        latents, style = latents.clone(), batch["style_pixels"].clone()
        latents[use.to(latents.device)] = self.latents[index].to(latents)
        twins = self.style[index].permute(0, 3, 1, 2).float() / 255.0
        style[use.to(style.device)] = twins.to(style)
        return latents, style


@torch.no_grad()
def _make(vae, view: StylisedView, batch_size: int = 64) -> dict[str, torch.Tensor]:
    latents, styles = [], []
    for batch in batches(view, batch_size):
        latents.append(latent_space.encode(vae, batch["image"]).cpu())
        styles.append((batch["style_pixels"] * 255).round().byte().permute(0, 2, 3, 1))
    return {"latents": torch.cat(latents), "style": torch.cat(styles)}


def _uint8(pixels: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return np.ascontiguousarray((pixels.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
