"""Stylised twins: the portrait and its style input share one stylisation, the identity stays
the photo's, and training swaps twins in at the configured rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facestudio.data.dataset import ReconstructionDataset
from facestudio.training.stylize import STYLES, StylisedTwins, StylisedView, stylize_pair


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 64, dtype=np.float32)
    image = np.stack([np.add.outer(gradient, gradient) / 2] * 3, -1)
    image[..., 0] *= 0.9
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("index", range(len(STYLES)))
def test_every_style_changes_the_picture_and_is_reproducible(photo, index):
    palette = np.full_like(photo, (30, 160, 60))
    styled, again = stylize_pair(photo, photo, index, palette)
    assert styled.shape == photo.shape and styled.dtype == np.uint8
    assert np.abs(styled.astype(int) - photo).mean() > 3  # a visible change
    np.testing.assert_array_equal(styled, again)  # image and style input: the same stylisation
    np.testing.assert_array_equal(styled, stylize_pair(photo, photo, index, palette)[0])


def test_greyscale_and_pencil_twins_have_no_colour(photo):
    for index, name in enumerate(STYLES):
        if name in ("greyscale", "pencil"):
            styled = stylize_pair(photo, photo, index, photo)[0].astype(int)
            assert np.abs(styled[..., 0] - styled[..., 2]).max() <= 1


def test_twins_replace_latents_and_style_but_keep_the_identity(
    tiny_pipeline, eight_photos_prepared
):
    dataset = ReconstructionDataset(eight_photos_prepared)
    twins = StylisedTwins(tiny_pipeline.vae, dataset, None, write=False)
    assert twins.latents.shape[0] == 8 and twins.style.dtype == torch.uint8
    batch = torch.utils.data.default_collate([dataset[i] for i in (3, 5)])
    latents = torch.zeros(2, *twins.latents.shape[1:])
    swapped, style = twins.apply(batch, latents, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(swapped, twins.latents[[3, 5]])
    view = StylisedView(dataset)
    torch.testing.assert_close(
        style,
        torch.stack([view[3]["style_pixels"], view[5]["style_pixels"]]),
        atol=1 / 255 + 1e-6,
        rtol=0,
    )
    torch.testing.assert_close(view[3]["face"], dataset[3]["face"])
    kept, same_style = twins.apply(batch, latents, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(kept, latents)
    torch.testing.assert_close(same_style, batch["style_pixels"])
