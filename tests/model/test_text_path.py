"""The small text path: word-vector encoder, `StylePrior`, and text_prior's routing by kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facestudio.model.style_prior import StylePrior, style_space_id
from facestudio.model.text_encoder import (
    WordVectorEncoder,
    encode_prompts,
    unknown_words,
    word_tokenizer,
)
from facestudio.model.text_prior import prompt_embeddings, regress_prior_embeddings

WORDS = ["a", "blue", "red", "background", "dark", "left", "right", ","]


def text_parts(dim: int = 6, max_length: int = 10):
    vectors = np.random.default_rng(0).normal(size=(len(WORDS), dim)).astype(np.float32)
    return word_tokenizer(WORDS, max_length), WordVectorEncoder.from_vectors(vectors, "test")


def prior_for(style_dim: int = 4, text_dim: int = 6, max_tokens: int = 10) -> StylePrior:
    torch.manual_seed(0)
    prior = StylePrior(
        text_dim=text_dim, embedding_dim=style_dim, width=16, num_heads=2, max_tokens=max_tokens
    )
    return prior.eval()


def test_words_are_lower_cased_split_on_punctuation_and_unknown_words_masked():
    tokenizer, encoder = text_parts()
    encoded = encode_prompts(["A BLUE, background zebra", ""], tokenizer, encoder)
    assert encoded.attention_mask[0].tolist()[:5] == [True, True, True, True, False]
    assert not encoded.attention_mask[1].any()
    # Masked positions are zero vectors, known words their table rows.
    assert encoded.last_hidden_state[0, 4:].abs().sum() == 0
    row = encoder.vectors.weight[2 + WORDS.index("blue")]
    torch.testing.assert_close(encoded.last_hidden_state[0, 1], row)
    assert unknown_words("A blue zebra, qq", tokenizer) == ["zebra", "qq"]


def test_a_vocabulary_with_reserved_or_repeated_words_is_refused():
    with pytest.raises(ValueError, match="unique"):
        word_tokenizer(["a", "a"])
    with pytest.raises(ValueError, match="unique"):
        word_tokenizer(["[UNK]"])


def test_encoder_and_tokenizer_survive_a_save_in_fp16(tmp_path):
    tokenizer, encoder = text_parts()
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    encoder.half().save_pretrained(tmp_path / "text_encoder")
    from transformers import PreTrainedTokenizerFast

    loaded_tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp_path / "tokenizer")
    loaded = WordVectorEncoder.from_pretrained(tmp_path / "text_encoder")
    assert loaded.config.source == "test"
    a = encode_prompts(["a dark background"], tokenizer, encoder.float())
    b = encode_prompts(["a dark background"], loaded_tokenizer, loaded)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-3, rtol=1e-3)


def test_guidance_pushes_the_prompt_away_from_the_empty_prompt():
    tokenizer, encoder = text_parts()
    prior = prior_for()
    plain = regress_prior_embeddings(["blue background"], tokenizer, encoder, prior, 1.0)
    empty = regress_prior_embeddings([""], tokenizer, encoder, prior, 1.0)
    doubled = regress_prior_embeddings(["blue background"], tokenizer, encoder, prior, 2.0)
    torch.testing.assert_close(doubled, empty + 2.0 * (plain - empty))
    # An all-unknown prompt is the empty prompt: nothing in it is read.
    torch.testing.assert_close(
        regress_prior_embeddings(["zebra quokka"], tokenizer, encoder, prior, 1.0), empty
    )


def test_word_order_reaches_the_prediction():
    tokenizer, encoder = text_parts()
    prior = prior_for()
    a, b = regress_prior_embeddings(
        ["dark left , blue right", "blue left , dark right"], tokenizer, encoder, prior
    )
    assert not torch.allclose(a, b)


def test_predictions_are_in_the_style_space_units():
    tokenizer, encoder = text_parts()
    prior = prior_for()
    hidden = encode_prompts(["red"], tokenizer, encoder)
    before = prior(hidden.last_hidden_state, hidden.attention_mask)
    prior.set_embedding_statistics(torch.full((4,), 5.0), torch.full((4,), 2.0))
    after = prior(hidden.last_hidden_state, hidden.attention_mask)
    torch.testing.assert_close(after, 5.0 + 2.0 * before)


def test_too_many_tokens_get_a_clear_error():
    prior = prior_for(max_tokens=4)
    with pytest.raises(ValueError, match="at most 4"):
        prior(torch.zeros(1, 6, 6), torch.ones(1, 6, dtype=torch.bool))


def test_the_prior_saves_and_loads_with_its_style_space(tmp_path):
    tokenizer, encoder = text_parts()
    prior = StylePrior(text_dim=6, embedding_dim=4, width=16, num_heads=2, style_space="abc")
    prior.set_embedding_statistics(torch.arange(4.0), torch.ones(4) * 3)
    prior.eval().save_pretrained(tmp_path)
    loaded = StylePrior.from_pretrained(tmp_path)
    assert loaded.config.style_space == "abc" and not loaded.training
    prompts = ["a red background", ""]
    torch.testing.assert_close(
        regress_prior_embeddings(prompts, tokenizer, encoder, loaded, 3.0),
        regress_prior_embeddings(prompts, tokenizer, encoder, prior, 3.0),
    )


def test_style_space_id_names_the_encoder_weights(tmp_path):
    (tmp_path / "a" / "style_encoder").mkdir(parents=True)
    (tmp_path / "a" / "style_encoder" / "diffusion_pytorch_model.safetensors").write_bytes(b"1")
    (tmp_path / "b" / "style_encoder").mkdir(parents=True)
    (tmp_path / "b" / "style_encoder" / "diffusion_pytorch_model.safetensors").write_bytes(b"2")
    assert style_space_id(tmp_path / "a") != style_space_id(tmp_path / "b")
    with pytest.raises(FileNotFoundError):
        style_space_id(tmp_path / "c")


def test_prompt_embeddings_routes_a_clip_diffusion_prior_to_sampling():
    from facestudio.model.components import random_components

    parts = random_components()
    embedding = prompt_embeddings(
        ["a knight"],
        parts["tokenizer"],
        parts["text_encoder"],
        parts["prior"],
        parts["prior_scheduler"],
        num_inference_steps=3,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert embedding.shape == (1, parts["prior"].config.embedding_dim)


def test_prompt_embeddings_routes_a_style_prior_to_regression():
    tokenizer, encoder = text_parts()
    prior = prior_for()
    expected = regress_prior_embeddings(["dark background"], tokenizer, encoder, prior, 2.0)
    # No scheduler and no steps: a regression prior takes none.
    found = prompt_embeddings(["dark background"], tokenizer, encoder, prior, None, 0, 2.0)
    torch.testing.assert_close(found, expected)


def test_without_a_scale_each_kind_of_prior_gets_its_own_default():
    tokenizer, encoder = text_parts()
    prior = prior_for()
    torch.testing.assert_close(
        prompt_embeddings(["dark background"], tokenizer, encoder, prior, None),
        regress_prior_embeddings(["dark background"], tokenizer, encoder, prior, 1.0),
    )
    from facestudio.model.components import random_components

    parts = random_components()
    args = (["a knight"], parts["tokenizer"], parts["text_encoder"], parts["prior"])

    def sample(scale):
        scheduler = parts["prior_scheduler"]
        generator = torch.Generator().manual_seed(0)
        return prompt_embeddings(*args, scheduler, 3, scale, generator)

    torch.testing.assert_close(sample(None), sample(4.0))
