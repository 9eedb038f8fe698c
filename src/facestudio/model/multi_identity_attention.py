"""Multi-identity cross-attention: queries inside person region i attend only to identity i.

The context holds the N identities' guidance tokens one after another (N·K tokens). For each
U-Net resolution a boolean visibility matrix (queries × tokens) is built once per call from
the person regions, and passed to scaled-dot-product attention. Queries outside every region
follow `background`: "random" (the paper: one identity, drawn once per call) or "all" (every
identity's tokens, a shared context). Every query sees at least K tokens, so no softmax row is
empty and nothing becomes NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

MaskFunction = Callable[[int, int], torch.Tensor]
"""(width, height) -> (N, height, width) bool masks, non-overlapping, at that resolution."""


class IdentityRouting:
    """Which context tokens each query position may see, per U-Net resolution, for one call."""

    def __init__(
        self,
        masks_at: MaskFunction,
        num_identities: int,
        tokens_per_identity: int,
        latent_size: tuple[int, int],
        background: Literal["random", "all"] = "random",
        background_identity: int = 0,
    ) -> None:
        if background not in ("random", "all"):
            raise ValueError(f"background must be 'random' or 'all', got {background!r}")
        self.masks_at = masks_at
        self.num_identities = num_identities
        self.tokens_per_identity = tokens_per_identity
        self.latent_width, self.latent_height = latent_size
        self.background = background
        self.background_identity = background_identity
        self._visible: dict[int, torch.Tensor] = {}
        self.builds = 0  # how many visibility matrices were built (once per resolution)

    def resolution_of(self, query_length: int) -> tuple[int, int]:
        """The (width, height) of a U-Net level with `query_length` positions."""
        width, height = self.latent_width, self.latent_height
        for _ in range(8):
            if width * height == query_length:
                return width, height
            width, height = math.ceil(width / 2), math.ceil(height / 2)
        raise ValueError(
            f"no U-Net level of a {self.latent_width}×{self.latent_height} latent has {query_length} positions"
        )

    def visible(self, query_length: int, device: torch.device) -> torch.Tensor:
        """(queries, N·K) bool: True where a query may attend to a token."""
        cached = self._visible.get(query_length)
        if cached is not None and cached.device == device:
            return cached
        width, height = self.resolution_of(query_length)
        regions = self.masks_at(width, height).reshape(self.num_identities, -1).to(device)
        outside = ~regions.any(dim=0)
        if self.background == "all":
            background = torch.ones(self.num_identities, dtype=torch.bool, device=device)
        else:
            background = torch.zeros(self.num_identities, dtype=torch.bool, device=device)
            background[self.background_identity] = True
        per_identity = regions.T | (outside[:, None] & background[None, :])  # (Q, N)
        visible = per_identity.repeat_interleave(self.tokens_per_identity, dim=1)
        self._visible[query_length] = visible
        self.builds += 1
        return visible


class MultiIdentityAttnProcessor:
    """Cross-attention processor that routes each person region to its own identity tokens.

    Installed on cross-attention layers only; a self-attention call (no context) falls back to
    the plain processor. `on_attention(layer, probabilities)`, when set, computes attention
    explicitly and reports the (B, heads, queries, tokens) weights; for tests and inspection.
    """

    def __init__(
        self,
        routing: IdentityRouting,
        name: str = "",
        on_attention: Callable[[str, torch.Tensor], None] | None = None,
    ) -> None:
        self.routing = routing
        self.name = name
        self.on_attention = on_attention
        self._plain = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if encoder_hidden_states is None:
            return self._plain(attn, hidden_states, None, attention_mask, temb)
        expected = self.routing.num_identities * self.routing.tokens_per_identity
        if encoder_hidden_states.shape[1] != expected:
            raise ValueError(
                f"context has {encoder_hidden_states.shape[1]} tokens, routing expects {expected}"
            )
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch, query_length, _ = hidden_states.shape
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

        visible = self.routing.visible(query_length, query.device)
        if self.on_attention is None:
            out = F.scaled_dot_product_attention(
                query, key, value, attn_mask=visible, scale=attn.scale
            )
        else:
            scores = (query @ key.transpose(-1, -2)) * attn.scale
            probabilities = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1)
            self.on_attention(self.name, probabilities)
            out = probabilities @ value

        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install_multi_identity_processors(
    unet, routing: IdentityRouting, on_attention: Callable[[str, torch.Tensor], None] | None = None
) -> dict:
    """Route every cross-attention layer of `unet`; returns the previous processors to restore."""
    previous = dict(unet.attn_processors)
    processors = {
        name: MultiIdentityAttnProcessor(routing, name, on_attention)
        if name.endswith("attn2.processor")
        else processor
        for name, processor in previous.items()
    }
    unet.set_attn_processor(processors)
    return previous
