"""A small text encoder for models without CLIP: frozen pretrained word vectors, one per token.

The bundled model has to stay small and offline, and no package ships CLIP's text tower. A
table of pretrained word vectors (a vocabulary subset of GloVe 6B, stored fp16) is what turns
a prompt into numbers here; everything that reads word order or combines words is the
`StylePrior` after it (model/style_prior.py), which is trained. The table itself is frozen:
its value is that words never seen in training captions ("crimson", "backdrop") still land
near the words that were ("red", "background").

The tokenizer is a transformers `PreTrainedTokenizerFast` over a word-level vocabulary whose
ids are the table's rows: lower-cased, split on whitespace and punctuation (GloVe 6B was
trained on lower-cased text). Row 0 is padding and row 1 unknown words; both are zero vectors
and both are masked out, so an unknown word changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

PAD_TOKEN, UNK_TOKEN = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
DEFAULT_MAX_TOKENS = 32
"""Tokens a prompt keeps: captions here are 5–25 words; longer prompts are truncated."""


@dataclass
class WordEncoding(BaseOutput):
    """Per-token vectors (B, L, D) and which of them carry a known word (B, L) bool."""

    last_hidden_state: torch.Tensor
    attention_mask: torch.Tensor


class WordVectorEncoder(ModelMixin, ConfigMixin):
    """Looks up frozen word vectors; unknown words and padding are masked out.

    Args:
        vocab_size: rows of the table (padding and unknown included).
        embedding_dim: width of a word vector (GloVe 6B 50d: 50).
        source: where the vectors come from (package, version, sha256), kept in the config so
            a saved model states its provenance.
    """

    @register_to_config
    def __init__(self, vocab_size: int, embedding_dim: int, source: str = "") -> None:
        super().__init__()
        if vocab_size < 3 or embedding_dim < 1:
            raise ValueError("a word-vector encoder needs at least one word and one dimension")
        self.vectors = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.vectors.weight.requires_grad_(False)

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, source: str = "") -> WordVectorEncoder:
        """An encoder over `vectors` (words × dim); rows 0 and 1 (padding, unknown) are added."""
        table = np.concatenate([np.zeros((2, vectors.shape[1]), np.float32), vectors], axis=0)
        encoder = cls(vocab_size=len(table), embedding_dim=vectors.shape[1], source=source)
        with torch.no_grad():
            encoder.vectors.weight.copy_(torch.from_numpy(table.astype(np.float32)))
        return encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> WordEncoding:
        """The vectors of `input_ids` (B, L) in fp32, and the mask of known words."""
        input_ids = input_ids.to(self.vectors.weight.device)
        known = input_ids > UNK_ID
        if attention_mask is not None:
            known = known & attention_mask.to(known.device).bool()
        hidden = self.vectors(input_ids).float() * known[..., None]
        return WordEncoding(last_hidden_state=hidden, attention_mask=known)


def word_tokenizer(words: list[str], max_length: int = DEFAULT_MAX_TOKENS):
    """A word-level transformers tokenizer whose ids are rows of `WordVectorEncoder.from_vectors(
    vectors of words)`: padding 0, unknown 1, then `words` in order."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if len(set(words)) != len(words) or {PAD_TOKEN, UNK_TOKEN} & set(words):
        raise ValueError("the vocabulary must be unique words without [PAD] or [UNK]")
    vocab = {PAD_TOKEN: PAD_ID, UNK_TOKEN: UNK_ID} | {w: i + 2 for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=max_length,
    )


def encode_prompts(prompts: list[str], tokenizer, text_encoder: WordVectorEncoder) -> WordEncoding:
    """Tokenise `prompts` (padded to the longest, truncated at the tokenizer's length: padding
    is masked, so its amount changes nothing but the cost) and look up their vectors."""
    tokens = tokenizer(
        prompts,
        padding="longest",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    return text_encoder(tokens.input_ids, tokens.attention_mask)


def unknown_words(prompt: str, tokenizer) -> list[str]:
    """The words of `prompt` that the vocabulary lacks (they are ignored), for a warning."""
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    normalised = tokenizer.backend_tokenizer.normalizer.normalize_str(prompt)
    words = [w for w, _ in pre.pre_tokenize_str(normalised)]
    words = [w for w in words if any(c.isalnum() for c in w)]  # not punctuation marks
    return [w for w in words if tokenizer.convert_tokens_to_ids(w) == UNK_ID]
