"""Multi-identity cross-attention routes each person region to its own identity's tokens,
exactly, at every U-Net resolution, for square and non-square latents."""

from __future__ import annotations

import pytest
import torch

from facestudio.faces.regions import region_masks
from facestudio.model.components import ComponentSizes, random_components
from facestudio.model.multi_identity_attention import (
    IdentityRouting,
    install_multi_identity_processors,
)

K = 4


@pytest.fixture(scope="module")
def unet():
    return random_components(ComponentSizes.tiny(with_text=False))["unet"]


def _routing(latent_size, boxes, background="random", chosen=1):
    width, height = latent_size

    def masks_at(w, h):
        return torch.from_numpy(region_masks(boxes, (width * 8, height * 8), (w, h)))

    return IdentityRouting(masks_at, len(boxes), K, latent_size, background, chosen)


def _run(unet, routing, context, latent_size, capture=None, outputs=None):
    previous = install_multi_identity_processors(unet, routing, capture)
    hooks = []
    if outputs is not None:
        for name, module in unet.named_modules():
            if name.endswith("attn2"):
                hooks.append(
                    module.register_forward_hook(lambda m, i, o, n=name: outputs.__setitem__(n, o))
                )
    try:
        width, height = latent_size
        torch.manual_seed(0)
        sample = torch.randn(context.shape[0], 4, height, width)
        with torch.no_grad():
            return unet(sample, 500, encoder_hidden_states=context).sample
    finally:
        unet.set_attn_processor(previous)
        for hook in hooks:
            hook.remove()


@pytest.mark.parametrize("latent_size", [(8, 8), (12, 8), (7, 5)])
def test_attention_from_region_i_to_identity_j_is_exactly_zero(unet, latent_size):
    width, height = latent_size
    boxes = [
        (0, 0, width * 8 * 0.4, height * 8),
        (width * 8 * 0.4, 0, width * 8 * 0.8, height * 8 * 0.7),
    ]
    routing = _routing(latent_size, boxes, background="random", chosen=1)
    context = torch.randn(2, 2 * K, unet.config.cross_attention_dim)  # a guidance batch of 2
    seen = {}
    _run(
        unet,
        routing,
        context,
        latent_size,
        capture=lambda name, p: seen.setdefault(name, []).append(p),
    )
    assert len(seen) == sum(name.endswith("attn2.processor") for name in unet.attn_processors)
    resolutions = set()
    for probabilities in (p for ps in seen.values() for p in ps):
        queries = probabilities.shape[2]
        w, h = routing.resolution_of(queries)
        resolutions.add((w, h))
        masks = routing.masks_at(w, h).reshape(2, -1)
        assert not torch.isnan(probabilities).any()
        for i in range(2):
            own = probabilities[:, :, masks[i], i * K : (i + 1) * K]
            other = probabilities[:, :, masks[i], (1 - i) * K : (2 - i) * K]
            assert torch.all(other == 0) and torch.allclose(own.sum(-1), torch.ones(()))
        outside = ~masks.any(0)
        assert outside.any()
        assert torch.all(probabilities[:, :, outside, :K] == 0)  # background sees identity 1 only
    assert len(resolutions) >= 2  # more than one U-Net level was checked


def test_changing_identity_j_leaves_region_i_unchanged_in_every_layer(unet):
    latent_size = (12, 8)
    routing = _routing(latent_size, [(0, 0, 48, 64), (48, 0, 96, 64)])
    torch.manual_seed(1)
    context = torch.randn(1, 2 * K, unet.config.cross_attention_dim)
    changed = context.clone()
    changed[:, K:] = torch.randn(1, K, unet.config.cross_attention_dim)  # identity 1 replaced
    inputs = {}
    layers = {name: m for name, m in unet.named_modules() if name.endswith("attn2")}
    hooks = [
        module.register_forward_pre_hook(
            lambda m, args, kwargs, n=name: inputs.__setitem__(
                n, args[0] if args else kwargs["hidden_states"]
            ),
            with_kwargs=True,
        )
        for name, module in layers.items()
    ]
    try:
        _run(unet, routing, context, latent_size)
    finally:
        for hook in hooks:
            hook.remove()
    previous = install_multi_identity_processors(unet, routing)
    try:
        with torch.no_grad():
            for name, module in layers.items():
                hidden = inputs[name]
                w, h = routing.resolution_of(hidden.shape[1])
                region0 = routing.masks_at(w, h)[0].reshape(-1)
                first = module(hidden, encoder_hidden_states=context)
                second = module(hidden, encoder_hidden_states=changed)
                assert torch.equal(first[:, region0], second[:, region0]), name
                assert not torch.equal(first[:, ~region0], second[:, ~region0]), name
    finally:
        unet.set_attn_processor(previous)
    assert len(layers) >= 4


def test_explicit_and_fused_attention_agree(unet):
    latent_size = (8, 8)
    routing = _routing(latent_size, [(0, 0, 32, 64), (32, 0, 64, 64)], background="all")
    context = torch.randn(1, 2 * K, unet.config.cross_attention_dim)
    fused = _run(unet, routing, context, latent_size)
    explicit = _run(unet, routing, context, latent_size, capture=lambda name, p: None)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)


def test_visibility_is_built_once_per_resolution(unet):
    latent_size = (8, 8)
    routing = _routing(latent_size, [(0, 0, 32, 64), (32, 0, 64, 64)])
    context = torch.randn(1, 2 * K, unet.config.cross_attention_dim)
    for _ in range(3):
        _run(unet, routing, context, latent_size)
    levels = {routing.resolution_of(q) for q in routing._visible}
    assert routing.builds == len(levels) == 2


def test_every_query_sees_a_token_even_with_an_empty_region(unet):
    routing = _routing((8, 8), [(0, 0, 8, 8), (8, 8, 16, 16)], background="random", chosen=0)
    visible = routing.visible(64, torch.device("cpu"))
    assert visible.any(dim=1).all()
    with pytest.raises(ValueError, match="positions"):
        routing.resolution_of(63)
