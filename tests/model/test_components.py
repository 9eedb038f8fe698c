"""Assembling a model from pretrained parts saved in folders (as from a hub, offline here)."""

from __future__ import annotations

import numpy as np
import pytest

from facestudio.model.components import ComponentSizes, pretrained_components, random_components
from facestudio.pipeline import FaceStudioPipeline


@pytest.fixture(scope="module")
def base_folders(tmp_path_factory):
    parts = random_components(ComponentSizes.tiny(), seed=3)
    root = tmp_path_factory.mktemp("pretrained")
    parts["unet"].save_pretrained(root / "sd/unet")
    parts["vae"].save_pretrained(root / "sd/vae")
    parts["style_encoder"].towers[0].save_pretrained(root / "clip")
    for name in ("prior", "prior_scheduler", "text_encoder", "tokenizer"):
        parts[name].save_pretrained(root / f"karlo/{name}")
    return root, parts


def test_pretrained_parts_load_with_their_weights(base_folders):
    root, parts = base_folders
    loaded = pretrained_components(str(root / "sd"), [str(root / "clip")], str(root / "karlo"))
    for name in ("unet", "vae", "prior", "text_encoder", "style_encoder"):
        for (key, mine), theirs in zip(
            loaded[name].state_dict().items(), parts[name].state_dict().values(), strict=True
        ):
            assert np.array_equal(mine.numpy(), theirs.numpy()), f"{name}.{key}"
    assert loaded["guidance"].config.cross_attention_dim == parts["unet"].config.cross_attention_dim
    pipe = FaceStudioPipeline(**loaded)
    pipe.set_progress_bar_config(disable=True)
    original = FaceStudioPipeline(**{**parts, "guidance": loaded["guidance"]})
    original.set_progress_bar_config(disable=True)
    face = np.random.default_rng(0).normal(size=128)
    images = [
        np.asarray(
            p(
                prompt="hi",
                identities=[face],
                num_inference_steps=1,
                prior_num_inference_steps=2,
                seed=0,
            ).images[0]
        )
        for p in (pipe, original)
    ]
    assert images[0].shape == (64, 64, 3)
    np.testing.assert_array_equal(images[0], images[1])  # the loaded model is the saved one


def test_a_prior_in_another_embedding_space_is_refused(base_folders, tmp_path):
    root, _ = base_folders
    other = random_components(ComponentSizes.tiny(embedding_dim=16), seed=4)
    other["style_encoder"].towers[0].save_pretrained(tmp_path / "clip16")
    with pytest.raises(ValueError, match="one space"):
        pretrained_components(str(root / "sd"), [str(tmp_path / "clip16")], str(root / "karlo"))
