"""Multi-identity cross-attention: the routing contract (`IdentityRouting`) passed per call through
`cross_attention_kwargs`, on a processor installed once.

Without a routing the processor is diffusers' default exactly; with one, a query in person i's
region is unaffected by person j's identity at every layer and level (square, wide and odd
latents), classifier-free guidance may stack the batch, `attention_mask` and `spatial_norm` are
honoured, and training gets gradients only where the routing lets them flow."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from facestudio.model.components import ComponentSizes, random_components
from facestudio.model.multi_identity_attention import (
    SHARED,
    IdentityRouting,
    MultiIdentityAttnProcessor,
    attention_levels,
    concat_identity_tokens,
    install_identity_routing,
    level_size,
    resample_regions,
    unet_levels,
)

K = 4


@pytest.fixture(scope="module")
def parts():
    return random_components(ComponentSizes.tiny(with_text=False))


@pytest.fixture(scope="module")
def default_unet(parts):
    unet = copy.deepcopy(parts["unet"])
    unet.set_attn_processor(AttnProcessor2_0())
    return unet


@pytest.fixture(scope="module")
def unet(parts):
    unet = copy.deepcopy(parts["unet"])
    install_identity_routing(unet)
    return unet


def _halves(batch: int, height: int, width: int, swap_second: bool = False) -> torch.Tensor:
    """(B, 2, H, W) masks: person 0 on the left 40 %, person 1 on the next 40 % (top 70 %)."""
    masks = torch.zeros(batch, 2, height, width)
    left, right = int(width * 0.4), int(width * 0.8)
    masks[:, 0, :, :left] = 1
    masks[:, 1, : int(height * 0.7), left:right] = 1
    if swap_second and batch > 1:
        masks[1] = masks[1].flip(-1)
    return masks


def _context(guidance, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Identity tokens of (B, N, 128) face embeddings, one person after another."""
    return concat_identity_tokens([guidance(faces[:, i]) for i in range(faces.shape[1])])


def _sample(batch: int, latent_size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 4, *latent_size, generator=torch.Generator().manual_seed(seed))


def test_levels_follow_the_unet_and_the_latent_size(unet):
    levels = attention_levels(unet)
    assert unet_levels(unet) == 2
    assert {levels[n] for n in levels if n.startswith("down_blocks.1")} == {1}
    assert {levels[n] for n in levels if n.startswith("up_blocks.0")} == {1}
    assert {levels[n] for n in levels if n.startswith("up_blocks.1")} == {0}
    assert level_size((7, 5), 1) == (4, 3) and level_size((7, 5), 2) == (2, 2)


def test_without_routing_it_is_the_default_processor_bit_for_bit(unet, default_unet):
    context = torch.randn(2, 2 * K, unet.config.cross_attention_dim)
    key_mask = torch.tensor([[1, 1, 0, 1, 1, 1, 1, 0], [1] * 8], dtype=torch.bool)
    sample = _sample(2, (8, 12))
    with torch.no_grad():
        for mask in (None, key_mask):
            ours = unet(sample, 500, context, encoder_attention_mask=mask).sample
            theirs = default_unet(sample, 500, context, encoder_attention_mask=mask).sample
            assert torch.equal(ours, theirs)


def test_a_routing_that_hides_nothing_matches_the_default(unet, default_unet):
    latent_size = (8, 12)
    context = torch.randn(2, 2 * K, unet.config.cross_attention_dim)
    owner = torch.tensor([0] * K + [1] * K)
    nobody = torch.zeros(2, 2, 8, 12)  # no regions: every query is background, which is "all"
    routing = IdentityRouting.from_masks(owner, nobody, latent_size, 2, background="all")
    sample = _sample(2, latent_size)
    with torch.no_grad():
        routed = unet(sample, 500, context, cross_attention_kwargs=routing.attention_kwargs())
        plain = default_unet(sample, 500, context).sample
    torch.testing.assert_close(routed.sample, plain, atol=1e-6, rtol=0)


def _attn2_inputs(unet, sample, context, routing) -> dict[str, torch.Tensor]:
    layers = {name: m for name, m in unet.named_modules() if name.endswith("attn2")}
    inputs = {}
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
        with torch.no_grad():
            unet(sample, 500, context, cross_attention_kwargs=routing.attention_kwargs())
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


@pytest.mark.parametrize("latent_size", [(8, 8), (8, 12), (5, 7)])
def test_a_query_in_person_i_region_ignores_person_j(parts, unet, latent_size):
    """Perturb person 1's face embedding: every cross-attention output in person 0's region is
    bit-identical, at every layer and level, for each sample's own layout."""
    guidance = parts["guidance"]
    faces = torch.randn(2, 2, 128, generator=torch.Generator().manual_seed(1))
    changed = faces.clone()
    changed[:, 1] = torch.randn(2, 128, generator=torch.Generator().manual_seed(2))
    masks = _halves(2, 64, 96, swap_second=True)  # per-sample layouts, at image resolution
    routing = IdentityRouting.from_masks(
        _context(guidance, faces)[1], masks, latent_size, unet_levels(unet), background=1
    )
    with torch.no_grad():
        context, _ = _context(guidance, faces)
        other, _ = _context(guidance, changed)
    inputs = _attn2_inputs(unet, _sample(2, latent_size), context, routing)
    levels = attention_levels(unet)
    seen_levels = set()
    with torch.no_grad():
        for name, hidden in inputs.items():
            level = levels[f"{name}.processor"]
            seen_levels.add(level)
            module = dict(unet.named_modules())[name]
            first = module(hidden, context, identity_routing=routing)
            second = module(hidden, other, identity_routing=routing)
            regions = routing.regions[level].flatten(2)  # (B, N, Q)
            for sample in range(2):
                own = regions[sample, 0]
                assert own.any() and regions[sample, 1].any()
                assert torch.equal(first[sample, own], second[sample, own]), name
                assert not torch.equal(first[sample, ~own], second[sample, ~own]), name
    assert seen_levels == {0, 1}


def test_classifier_free_guidance_may_stack_the_batch(unet):
    latent_size = (8, 12)
    owner = torch.tensor([0] * K + [1] * K)
    routing = IdentityRouting.from_masks(owner, _halves(2, 8, 12, swap_second=True), latent_size, 2)
    sample = _sample(2, latent_size)
    unconditional = torch.randn(2, 2 * K, unet.config.cross_attention_dim)
    conditional = torch.randn(2, 2 * K, unet.config.cross_attention_dim)
    kwargs = routing.attention_kwargs()
    with torch.no_grad():
        stacked = unet(
            torch.cat([sample] * 2),
            500,
            torch.cat([unconditional, conditional]),
            cross_attention_kwargs=kwargs,
        ).sample
        apart = [
            unet(sample, 500, c, cross_attention_kwargs=kwargs).sample
            for c in (unconditional, conditional)
        ]
    torch.testing.assert_close(stacked, torch.cat(apart), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not a multiple"), torch.no_grad():
        unet(_sample(3, latent_size), 500, torch.randn(3, 2 * K, 32), cross_attention_kwargs=kwargs)


def test_attention_mask_is_honoured_with_routing(unet):
    """Masking a token out through `encoder_attention_mask` equals leaving it out of the context."""
    latent_size = (8, 12)
    masks = _halves(1, 8, 12)
    owner = torch.tensor([0] * K + [1] * K)
    context = torch.randn(2, 2 * K, unet.config.cross_attention_dim)
    keep = torch.ones(2 * K, dtype=torch.bool)
    keep[[1, K + 2]] = False  # one token of each person
    sample = _sample(2, latent_size)
    routing = IdentityRouting.from_masks(owner, masks, latent_size, 2, background=0)
    fewer = IdentityRouting.from_masks(owner[keep], masks, latent_size, 2, background=0)
    with torch.no_grad():
        masked = unet(
            sample,
            500,
            context,
            encoder_attention_mask=keep.expand(2, -1),
            cross_attention_kwargs=routing.attention_kwargs(),
        ).sample
        removed = unet(
            sample, 500, context[:, keep], cross_attention_kwargs=fewer.attention_kwargs()
        ).sample
        unmasked = unet(sample, 500, context, cross_attention_kwargs=routing.attention_kwargs())
    torch.testing.assert_close(masked, removed, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(masked, unmasked.sample, atol=1e-4)


def test_spatial_norm_and_image_shaped_input_are_honoured():
    torch.manual_seed(0)
    attn = Attention(32, cross_attention_dim=8, heads=2, dim_head=8, spatial_norm_dim=4)
    hidden = torch.randn(2, 32, 5, 7)
    temb = torch.randn(2, 4, 5, 7)
    context = torch.randn(2, 3, 8)
    owner = torch.tensor([0, 1, SHARED])
    everyone = IdentityRouting.from_masks(owner, torch.zeros(1, 2, 5, 7), (5, 7), 1, "all")
    routed = MultiIdentityAttnProcessor(level=0)
    expected = AttnProcessor2_0()(attn, hidden, context, temb=temb)
    got = routed(attn, hidden, context, temb=temb, identity_routing=everyone)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(
        got, routed(attn, hidden, context, temb=temb * 2, identity_routing=everyone)
    )


def test_routing_is_deterministic(parts, unet):
    latent_size = (8, 12)
    owner = torch.tensor([0] * K + [1] * K)
    masks = _halves(4, 8, 12)
    draws = [
        IdentityRouting.from_masks(
            owner, masks, latent_size, 2, generator=torch.Generator().manual_seed(5)
        )
        for _ in range(2)
    ]
    assert torch.equal(draws[0].background, draws[1].background)
    context = torch.randn(4, 2 * K, unet.config.cross_attention_dim)
    with torch.no_grad():
        runs = [
            unet(_sample(4, latent_size), 500, context, cross_attention_kwargs=r.attention_kwargs())
            for r in draws
        ]
    assert torch.equal(runs[0].sample, runs[1].sample)


def test_training_forward_backward_routes_gradients(parts):
    """Two-person training batch: sample 0 has both people, sample 1 only person 0 (person 1's
    mask is empty). Person 1's identity gets gradient from sample 0 only, exactly."""
    unet = copy.deepcopy(parts["unet"])
    guidance = copy.deepcopy(parts["guidance"])
    install_identity_routing(unet)
    latent_size = (8, 8)
    masks = _halves(2, 64, 64)
    masks[1, 1] = 0
    faces = torch.randn(2, 2, 128, requires_grad=True)
    context, owner = _context(guidance, faces)
    routing = IdentityRouting.from_masks(owner, masks, latent_size, unet_levels(unet), background=0)
    noisy, target = _sample(2, latent_size, 1), _sample(2, latent_size, 2)
    predicted = unet(noisy, 300, context, cross_attention_kwargs=routing.attention_kwargs())
    loss = torch.nn.functional.mse_loss(predicted.sample, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.equal(faces.grad[1, 1], torch.zeros(128))
    assert faces.grad[0, 1].abs().sum() > 0 and faces.grad[1, 0].abs().sum() > 0
    assert guidance.proj.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in unet.parameters() if p.grad is not None)


def test_resampling_keeps_small_regions_and_leaves_absent_people_out():
    masks = torch.zeros(1, 3, 64, 64)
    masks[0, 0, :, :32] = 1
    masks[0, 1, 40:44, 50:54] = 1  # 4×4 px: vanishes at 4×4 by area, keeps its best cell
    coarse = resample_regions(masks, (4, 4))
    assert coarse[0, 0, :, :2].all() and coarse[0, 1].sum() == 1 and not coarse[0, 2].any()
    assert (coarse.sum(dim=1) <= 1).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(owner=torch.tensor([0, 0, 0, 0])), "own no context token"),
        (dict(owner=torch.tensor([0, 1, 2])), "person indices"),
        (dict(background=2), "background person"),
        (dict(latent_size=(8, 12)), "positions"),
    ],
)
def test_bad_routing_gets_a_clear_error(unet, change, message):
    owner = change.get("owner", torch.tensor([0] * K + [1] * K))
    latent_size = change.get("latent_size", (8, 8))
    with pytest.raises(ValueError, match=message):
        routing = IdentityRouting.from_masks(
            owner, _halves(1, 8, 8), latent_size, 2, change.get("background", 0)
        )
        with torch.no_grad():
            unet(
                _sample(1, (8, 8)),
                500,
                torch.randn(1, 2 * K, 32),
                cross_attention_kwargs=routing.attention_kwargs(),
            )


def test_overlapping_regions_and_no_background_are_refused():
    owner = torch.tensor([0, 1])
    both = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="overlap"):
        IdentityRouting(owner, [both], (4, 4), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="see no token"):
        IdentityRouting(owner, [~both], (4, 4), torch.zeros(1, 2, dtype=torch.bool))
