"""The small model's prior: a prompt's word vectors -> an embedding in the style encoder's space.

The paper's prior is a DALL-E-2 diffusion prior from CLIP text to CLIP image space. The
bundled model's style space is its own (a 64-d embedding from a tiny CLIP-layout tower trained
with the U-Net), so its prior is trained here on (caption, style embedding) pairs, where every
caption was measured from the training portrait it describes (training/captions.py).

What it is: a small transformer over the prompt's word vectors (so word order counts: "lit from
the left, looking right" is not "lit from the right, looking left") with a summary token whose
output a Linear maps to the standardised style embedding. It regresses the *mean* style
embedding of the portraits a caption fits (mean-squared error in standardised units), so a
caption that names two attributes gets the average look of portraits with both, and the
attributes it leaves out stay at the data's average. The measurement that chose regression
over a diffusion prior is in docs/text.md.

Guidance works as for a diffusion prior: training drops a share of captions to the empty
prompt, whose prediction is the data's mean embedding `u`; a prompt's embedding `c` is pushed
away from it, `u + s·(c − u)`, to make the prompt's attributes stronger (s = 1: the plain
regression).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class StylePrior(ModelMixin, ConfigMixin):
    """Word vectors (B, L, text_dim) and their mask (B, L) -> style embeddings (B, embedding_dim).

    Args:
        text_dim: width of the text encoder's vectors.
        embedding_dim: width of the style encoder's embedding it predicts.
        width, num_layers, num_heads: the transformer's size.
        max_tokens: the longest token sequence (the tokenizer's `model_max_length`).
        dropout: dropout inside the transformer while training.
        style_space: `style_space_id` of the style encoder whose embeddings it was trained on;
            a prior is only valid beside that encoder.
    """

    @register_to_config
    def __init__(
        self,
        text_dim: int,
        embedding_dim: int,
        width: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        max_tokens: int = 32,
        dropout: float = 0.1,
        style_space: str = "",
    ) -> None:
        super().__init__()
        self.input = nn.Linear(text_dim, width)
        self.position = nn.Parameter(torch.randn(max_tokens + 1, width) * 0.02)
        self.summary = nn.Parameter(torch.randn(width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, num_heads, 4 * width, dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, embedding_dim)
        self.register_buffer("embedding_mean", torch.zeros(embedding_dim))
        self.register_buffer("embedding_std", torch.ones(embedding_dim))

    @torch.no_grad()
    def set_embedding_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Predict in units of the style embeddings' per-dimension spread (set before training:
        otherwise the few widest dimensions dominate the loss)."""
        self.embedding_mean.copy_(mean)
        self.embedding_std.copy_(std.clamp(min=1e-6))

    def standardised(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The prediction in standardised units (what training's loss compares)."""
        hidden_states = hidden_states.to(self.input.weight)
        batch, length = attention_mask.shape
        if length + 1 > self.position.shape[0]:
            raise ValueError(
                f"{length} tokens but the prior takes at most {self.position.shape[0] - 1}; "
                "truncate with the pipeline's tokenizer"
            )
        tokens = (
            torch.cat([self.summary.expand(batch, 1, -1), self.input(hidden_states)], dim=1)
            + self.position[: length + 1]
        )
        keep = torch.cat(
            [
                torch.ones(batch, 1, dtype=torch.bool, device=attention_mask.device),
                attention_mask.bool(),
            ],
            dim=1,
        )
        encoded = self.layers(tokens, src_key_padding_mask=~keep.to(tokens.device))
        return self.head(self.norm(encoded[:, 0]))

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Style-space embeddings (B, embedding_dim) for encoded prompts."""
        predicted = self.standardised(hidden_states, attention_mask)
        return predicted * self.embedding_std + self.embedding_mean

    @torch.no_grad()
    def guided(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, guidance_scale: float
    ) -> torch.Tensor:
        """`u + s·(c − u)`: the prompt's embedding pushed away from the empty prompt's."""
        conditional = self(hidden_states, attention_mask)
        if guidance_scale == 1.0:
            return conditional
        unconditional = self(hidden_states[:, :0], attention_mask[:, :0])
        return unconditional + guidance_scale * (conditional - unconditional)


def style_space_id(model_folder: str | Path) -> str:
    """sha256 over the weight files of a pipeline folder's `style_encoder`: which embedding
    space a prior predicts into (the same id means the same encoder, bit for bit)."""
    digest = hashlib.sha256()
    files = sorted(Path(model_folder, "style_encoder").glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"'{model_folder}' has no style_encoder weights")
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()
