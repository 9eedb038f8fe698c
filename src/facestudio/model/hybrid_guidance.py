"""Hybrid guidance: style image, face identity and text fused into cross-attention context tokens.

As in the FaceStudio paper: one Linear maps `style ‖ face` to the guidance; the text branch
feeds the prior's CLIP-image-space embedding through the *same* Linear in place of the style
embedding; the two are blended, `e_g = α·e_i + (1 − α)·e_p`. Choices the paper leaves open
(recorded in docs/model.md): K context tokens per identity, a LayerNorm-free plain Linear,
and null embeddings for style and face that classifier-free guidance uses.

The face embedding is standardised (`face_mean`, `face_std`, buffers saved with the weights)
before the Linear: a recogniser's unit-norm embeddings of different people differ by only
~0.04 per dimension around a large shared mean, and Adam moves each weight by about the
learning rate whatever its input's scale, so unstandardised the identity part of the tokens
learns far more slowly than the style part. `set_face_statistics` sets them without changing
the module's output.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class HybridGuidance(ModelMixin, ConfigMixin):
    """Maps (style or prior embedding, face embedding) to `num_tokens` context tokens.

    Args:
        style_dim: width of the style embedding (the sum over concatenated CLIP encoders).
        face_dim: width of the face recogniser's embedding (dlib: 128; ArcFace: 512).
        cross_attention_dim: the U-Net's cross-attention width.
        num_tokens: context tokens per identity (K).
        learned_null: learn the null style/face embeddings used when an input is absent or
            dropped; otherwise they are fixed zeros.
    """

    @register_to_config
    def __init__(
        self,
        style_dim: int = 768,
        face_dim: int = 128,
        cross_attention_dim: int = 768,
        num_tokens: int = 4,
        learned_null: bool = True,
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(style_dim + face_dim, num_tokens * cross_attention_dim)
        self.null_style = nn.Parameter(torch.zeros(style_dim), requires_grad=learned_null)
        self.null_face = nn.Parameter(torch.zeros(face_dim), requires_grad=learned_null)
        self.register_buffer("face_mean", torch.zeros(face_dim))
        self.register_buffer("face_std", torch.ones(face_dim))

    @torch.no_grad()
    def set_face_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise face embeddings with `mean`/`std` from now on, keeping every output equal.

        The face columns of the Linear and its bias are re-expressed for the new input scale, so
        only the learning dynamics change (each identity dimension moves as fast as a style one).
        """
        mean = mean.to(self.face_mean)
        std = std.to(self.face_std).clamp(min=1e-6)
        style_dim = self.config.style_dim
        face_weight = self.proj.weight[:, style_dim:]
        # Undo the current standardisation, then apply the new one: W'(f - m')/s' = W(f - m)/s.
        raw_weight = face_weight / self.face_std
        self.proj.bias += raw_weight @ (mean - self.face_mean)
        face_weight.copy_(raw_weight * std)
        self.face_mean.copy_(mean)
        self.face_std.copy_(std)

    @property
    def has_face_statistics(self) -> bool:
        """Whether `set_face_statistics` was applied (the defaults leave embeddings unchanged)."""
        return bool(self.face_mean.any() or (self.face_std != 1).any())

    def tokens(self, style: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """One branch: `Linear(style ‖ face)` as (B, K, cross_attention_dim)."""
        face = (face - self.face_mean.to(face)) / self.face_std.to(face)
        fused = self.proj(torch.cat([style, face], dim=-1))
        return fused.view(fused.shape[0], self.config.num_tokens, self.config.cross_attention_dim)

    def forward(
        self,
        face: torch.Tensor | None,
        style: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
        alpha: float = 1.0,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """The guidance tokens `α·e_i + (1 − α)·e_p` for a batch.

        `face`, `style`, `prior` are (B, dim) or None; None means the null embedding. The
        text branch is skipped when α = 1 and the image branch when α = 0, so an unused input
        cannot affect the result.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        given = [t for t in (face, style, prior) if t is not None]
        batch = batch_size or (given[0].shape[0] if given else 1)
        face = self._or_null(face, self.null_face, batch)
        result = None
        if alpha > 0.0:
            result = alpha * self.tokens(self._or_null(style, self.null_style, batch), face)
        if alpha < 1.0:
            text = (1.0 - alpha) * self.tokens(self._or_null(prior, self.null_style, batch), face)
            result = text if result is None else result + text
        return result

    def _or_null(self, value: torch.Tensor | None, null: torch.Tensor, batch: int) -> torch.Tensor:
        if value is None:
            return null.to(self.proj.weight.dtype).expand(batch, -1)
        return value.to(device=self.proj.weight.device, dtype=self.proj.weight.dtype)
