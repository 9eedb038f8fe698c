"""Multi-identity cross-attention: queries in person i's region attend only to person i's tokens.

The whole contract is one object, `IdentityRouting`, built for one U-Net call (an inference
call or a training batch) and passed the diffusers way:
`unet(..., cross_attention_kwargs=routing.attention_kwargs())`. It holds

- the token layout: `token_owner[t]` is the person whose identity context token `t` carries
  (`SHARED` for tokens every query sees). `concat_identity_tokens` builds a context and its
  layout together, so the layout is never re-spelled elsewhere;
- the region masks at every U-Net level. The size of level ℓ follows from the latent size:
  each down-sampling (a stride-2 convolution with padding 1) halves a side, rounding up, and
  the up path returns to the same sizes. Nothing is inferred from a query length;
- what queries outside every region see (`background`): one person per sample (the paper
  draws one at random) or everyone.

`MultiIdentityAttnProcessor` is installed once on every attention layer of a U-Net
(`install_identity_routing`). Without a routing, or without a context (self-attention), it
is diffusers' `AttnProcessor2_0`, exactly. With one, it honours `attention_mask` and
`spatial_norm` as that processor does and adds the routing on top. Every query keeps at least
one visible token, so no softmax row is empty and nothing becomes NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

ROUTING_KWARG = "identity_routing"
"""The `cross_attention_kwargs` key the routing travels under."""

SHARED = -1
"""`token_owner` value of a context token that every query may see."""

MaskFunction = Callable[[int, int], torch.Tensor]
"""(height, width) -> (N, height, width) or (B, N, height, width) bool masks at that size."""

Background = Literal["random", "all"] | int | torch.Tensor


def concat_identity_tokens(per_person: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The context of several people, (B, ΣKᵢ, D), their tokens one after another, and its
    layout: the (ΣKᵢ,) `token_owner` for `IdentityRouting`."""
    if not per_person:
        raise ValueError("concat_identity_tokens needs the tokens of at least one person")
    owner = torch.cat(
        [torch.full((t.shape[1],), i, dtype=torch.long) for i, t in enumerate(per_person)]
    )
    return torch.cat(list(per_person), dim=1), owner


def level_size(latent_size: tuple[int, int], level: int) -> tuple[int, int]:
    """(height, width) of U-Net level `level` (0: the latent itself) for a latent of that size."""
    height, width = latent_size
    for _ in range(level):
        height, width = -(-height // 2), -(-width // 2)
    return height, width


def unet_levels(unet) -> int:
    """How many resolutions a `UNet2DConditionModel` works at (one per block of `block_out_channels`)."""
    return len(unet.config.block_out_channels)


def attention_levels(unet) -> dict[str, int | None]:
    """The level of each attention processor of a `UNet2DConditionModel`, from its place.

    Down block i works at level i, the mid block at the deepest level, up block j at level
    `levels - 1 - j`; processors elsewhere get None (they cannot be routed).
    """
    deepest = unet_levels(unet) - 1
    levels: dict[str, int | None] = {}
    for name in unet.attn_processors:
        block, _, rest = name.partition(".")
        index = rest.partition(".")[0]
        if block == "down_blocks" and index.isdigit():
            levels[name] = int(index)
        elif block == "up_blocks" and index.isdigit():
            levels[name] = deepest - int(index)
        elif block == "mid_block":
            levels[name] = deepest
        else:
            levels[name] = None
    return levels


def resample_regions(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Soft (B, N, H, W) region masks in [0, 1] as non-overlapping bool masks of `size`.

    A cell goes to the person covering most of it when that cover is at least half. A region
    that vanishes at a coarse size keeps the cell it covers most, unless another region owns
    it; a region that is empty everywhere (a person absent from a sample) stays empty.
    """
    height, width = size
    coverage = F.interpolate(masks.float(), size=(height, width), mode="area")
    best = coverage.argmax(dim=1)
    owned = coverage.max(dim=1).values >= 0.5
    count = masks.shape[1]
    regions = torch.stack([(best == i) & owned for i in range(count)], dim=1)
    for sample in range(masks.shape[0]):
        for i in range(count):
            if regions[sample, i].any() or not coverage[sample, i].max() > 0:
                continue
            flat = int(coverage[sample, i].argmax())
            row, col = flat // width, flat % width
            if not regions[sample, :, row, col].any():
                regions[sample, i, row, col] = True
    return regions


class IdentityRouting:
    """Which context tokens belong to which person, and which latent cells to whom, for one call.

    Args:
        token_owner: (T,) long, the person of each context token, or `SHARED`.
        regions: per U-Net level ℓ, (B, N, h_ℓ, w_ℓ) bool non-overlapping masks at
            `level_size(latent_size, ℓ)`. B is 1 (every sample alike) or the batch the
            routing is built for.
        latent_size: (height, width) of the U-Net input.
        background: (B, N) bool, the people whose tokens queries outside every region see.

    Most callers use `from_masks` (training batches) or `from_mask_function` (a layout with
    its own resampling rule). The U-Net batch may be a multiple of B, built as
    `torch.cat([x] * k)` the way classifier-free guidance stacks its terms.
    """

    def __init__(
        self,
        token_owner: torch.Tensor,
        regions: Sequence[torch.Tensor],
        latent_size: tuple[int, int],
        background: torch.Tensor,
    ) -> None:
        self.token_owner = torch.as_tensor(token_owner, dtype=torch.long)
        self.regions = tuple(r.bool() for r in regions)
        self.latent_size = (int(latent_size[0]), int(latent_size[1]))
        self.background = background.bool()
        self._check()
        self._visible = tuple(self._visibility(r) for r in self.regions)

    @property
    def num_people(self) -> int:
        return self.regions[0].shape[1]

    @property
    def batch_size(self) -> int:
        return self.regions[0].shape[0]

    @property
    def num_tokens(self) -> int:
        return self.token_owner.shape[0]

    @classmethod
    def from_masks(
        cls,
        token_owner: torch.Tensor,
        masks: torch.Tensor,
        latent_size: tuple[int, int],
        levels: int,
        background: Background = "random",
        generator: torch.Generator | None = None,
    ) -> IdentityRouting:
        """Routing for a batch with per-sample region masks, e.g. two-person training samples.

        `masks`: (B, N, H, W) or (N, H, W) soft or bool masks at any size (the image's, the
        latent's), resampled to every level with `resample_regions`. `levels`: the U-Net's
        (`unet_levels(unet)`). `background`: "random" draws one person per sample with
        `generator`, "all", a person index, or a (B,) tensor of indices.
        """
        masks = masks[None] if masks.ndim == 3 else masks
        return cls.from_mask_function(
            token_owner,
            lambda height, width: resample_regions(masks, (height, width)),
            latent_size,
            levels,
            background,
            generator,
        )

    @classmethod
    def from_mask_function(
        cls,
        token_owner: torch.Tensor,
        masks_at: MaskFunction,
        latent_size: tuple[int, int],
        levels: int,
        background: Background = "random",
        generator: torch.Generator | None = None,
    ) -> IdentityRouting:
        """Routing whose masks at each level come from `masks_at(height, width)`."""
        regions = []
        for level in range(levels):
            masks = torch.as_tensor(masks_at(*level_size(latent_size, level)))
            regions.append(masks[None] if masks.ndim == 3 else masks)
        return cls(
            token_owner, regions, latent_size, _background(background, regions[0], generator)
        )

    def attention_kwargs(self) -> dict:
        """`cross_attention_kwargs` that carry this routing to the processors."""
        return {ROUTING_KWARG: self}

    def to(self, device: torch.device | str) -> IdentityRouting:
        """The same routing with its tensors on `device`."""
        return IdentityRouting(
            self.token_owner.to(device),
            [r.to(device) for r in self.regions],
            self.latent_size,
            self.background.to(device),
        )

    def visible(self, level: int, query_length: int) -> torch.Tensor:
        """(B, queries, tokens) bool: True where a query of level `level` may see a token."""
        if not 0 <= level < len(self._visible):
            raise ValueError(
                f"the routing covers U-Net levels 0–{len(self._visible) - 1}, not level {level}; "
                "build it with levels=unet_levels(unet)"
            )
        visible = self._visible[level]
        if visible.shape[1] != query_length:
            height, width = level_size(self.latent_size, level)
            raise ValueError(
                f"an attention layer at U-Net level {level} has {query_length} positions, but a "
                f"{self.latent_size[0]}×{self.latent_size[1]} latent has {height}×{width} there; "
                "build the routing for the latent size the U-Net runs at"
            )
        return visible

    def _visibility(self, regions: torch.Tensor) -> torch.Tensor:
        batch, count = regions.shape[:2]
        inside = regions.reshape(batch, count, -1).transpose(1, 2)  # (B, Q, N)
        outside = ~inside.any(dim=2, keepdim=True)
        background = self.background.expand(batch, -1)[:, None, :]
        per_person = inside | (outside & background)
        owner = self.token_owner.clamp(min=0).to(regions.device)
        visible = per_person[:, :, owner]
        return visible | (self.token_owner == SHARED).to(regions.device)

    def _check(self) -> None:
        count, batch = self.num_people, self.batch_size
        owner = self.token_owner
        if owner.ndim != 1 or owner.numel() == 0 or owner.min() < SHARED or owner.max() >= count:
            raise ValueError(
                f"token_owner must be a 1-D tensor of person indices 0–{count - 1} or SHARED (-1)"
            )
        absent = [i for i in range(count) if not (owner == i).any()]
        if absent:
            raise ValueError(f"person(s) {absent} own no context token; give each person tokens")
        for level, masks in enumerate(self.regions):
            expected = (batch, count, *level_size(self.latent_size, level))
            if tuple(masks.shape) != expected:
                raise ValueError(
                    f"region masks at level {level} have shape {tuple(masks.shape)}, expected {expected}"
                )
            if (masks.sum(dim=1) > 1).any():
                raise ValueError(f"region masks overlap at level {level}; a cell has one owner")
        if self.background.shape not in ((batch, count), (1, count)):
            raise ValueError(f"background must have shape ({batch}, {count})")
        if not ((owner == SHARED).any() or self.background.any(dim=1).all()):
            raise ValueError("queries outside every region would see no token; give a background")


def _background(background: Background, masks: torch.Tensor, generator) -> torch.Tensor:
    batch, count = masks.shape[:2]
    if isinstance(background, str):
        if background == "all":
            return torch.ones(batch, count, dtype=torch.bool)
        if background != "random":
            raise ValueError(f"background must be 'random', 'all' or a person, got {background!r}")
        background = torch.randint(count, (batch,), generator=generator)
    chosen = torch.as_tensor(background, dtype=torch.long).reshape(-1)
    if chosen.numel() not in (1, batch):
        raise ValueError(f"{chosen.numel()} background people for a batch of {batch}")
    chosen = chosen.expand(batch)
    if chosen.min() < 0 or chosen.max() >= count:
        raise ValueError(f"background person must be in 0–{count - 1}, got {chosen.tolist()}")
    return F.one_hot(chosen, count).bool()


class MultiIdentityAttnProcessor:
    """diffusers' `AttnProcessor2_0`, plus identity routing when a call carries one.

    `level`: the U-Net level of the layer this processor serves (see `attention_levels`);
    None for a layer outside the U-Net's levels, which then refuses a routing.
    """

    def __init__(self, level: int | None = None) -> None:
        self.level = level
        self._default = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        identity_routing: IdentityRouting | None = None,
    ) -> torch.Tensor:
        if identity_routing is None or encoder_hidden_states is None:
            return self._default(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if self.level is None:
            raise ValueError("this attention layer is not at a known U-Net level; it cannot route")
        if encoder_hidden_states.shape[1] != identity_routing.num_tokens:
            raise ValueError(
                f"context has {encoder_hidden_states.shape[1]} tokens, "
                f"the routing's layout has {identity_routing.num_tokens}"
            )
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch, query_length, _ = hidden_states.shape
        mask = self._mask(
            attn, identity_routing, attention_mask, batch, query_length, hidden_states
        )
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)

        query = attn.to_q(hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=attn.scale)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _mask(self, attn, routing, attention_mask, batch, query_length, hidden_states):
        """The routing's visibility for this batch, combined with the layer's `attention_mask`."""
        visible = routing.visible(self.level, query_length).to(hidden_states.device)
        if batch % visible.shape[0]:
            raise ValueError(
                f"the U-Net batch of {batch} is not a multiple of the routing's {visible.shape[0]}"
            )
        # (Q, T) broadcasts over batch and heads; per-sample masks repeat as torch.cat([x] * k).
        if visible.shape[0] == 1:
            visible = visible[0]
        else:
            visible = visible.repeat(batch // visible.shape[0], 1, 1)[:, None]
        if attention_mask is None:
            return visible
        tokens = routing.num_tokens
        prepared = attn.prepare_attention_mask(attention_mask, tokens, batch)
        prepared = prepared.view(batch, attn.heads, -1, prepared.shape[-1])
        if prepared.dtype == torch.bool:
            return prepared & visible
        blocked = torch.zeros(visible.shape, dtype=prepared.dtype, device=prepared.device)
        return prepared + blocked.masked_fill(~visible, float("-inf"))


def install_identity_routing(unet) -> None:
    """Put `MultiIdentityAttnProcessor` on every attention layer of `unet`, once (at load or
    build). Calls without a routing are unchanged; calls with one pass it per call."""
    levels = attention_levels(unet)
    unet.set_attn_processor({name: MultiIdentityAttnProcessor(levels[name]) for name in levels})


def routes_identities(unet) -> bool:
    """Whether every cross-attention layer of `unet` can take an `IdentityRouting`."""
    return all(
        isinstance(p, MultiIdentityAttnProcessor) and p.level is not None
        for name, p in unet.attn_processors.items()
        if name.endswith("attn2.processor")
    )
