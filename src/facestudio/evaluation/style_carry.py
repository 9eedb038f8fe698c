"""Does a generated image take its style image's look? A measure that needs no style classifier.

A style image is a portrait that went through some stylisation (a sketch, a painting-like
filter, greyscale, a colour cast). Its look shows in low-level statistics that barely depend
on who is shown: how colourful it is, its mean colour in Lab, its contrast, how much of it is
edges, how much is near-white paper. For one person and seed, two images are generated: one
with the stylised style image, one with the same portrait unstylised (the baseline). The style
is *taken* when the stylised generation's statistics lie closer to the style image's than the
baseline's do: the style input moved the output towards the style, by the same amount of
everything else (identity, seed, framing). Distances are in units of each statistic's spread
over the compared images, so no statistic dominates by its scale.
"""

from __future__ import annotations

import cv2
import numpy as np

FEATURES = (
    "colourfulness",
    "lab_a",
    "lab_b",
    "lightness",
    "contrast",
    "edge_density",
    "paper_white",
)


def style_features(image: np.ndarray) -> np.ndarray:
    """The look of an RGB uint8 image as `FEATURES`."""
    rgb = image.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, 60, 150) > 0
    return np.array(
        [
            colourfulness,
            lab[..., 1].mean(),
            lab[..., 2].mean(),
            lab[..., 0].mean(),
            grey.astype(np.float32).std(),
            100.0 * edges.mean(),
            100.0 * (grey > 225).mean(),
        ],
        np.float64,
    )


def styles_taken(
    styled: list[np.ndarray], plain: list[np.ndarray], styles: list[np.ndarray]
) -> list[bool]:
    """For each case i: is `styled[i]` closer in look to `styles[i]` than `plain[i]` is?"""
    a, b, s = (np.stack([style_features(x) for x in group]) for group in (styled, plain, styles))
    spread = np.concatenate([a, b, s]).std(0) + 1e-6
    closer = np.linalg.norm((a - s) / spread, axis=1) < np.linalg.norm((b - s) / spread, axis=1)
    return closer.tolist()
