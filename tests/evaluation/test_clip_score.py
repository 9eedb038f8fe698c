"""CLIP-T on a small CLIP built from configs (real CLIP weights are not reachable offline)."""

from __future__ import annotations

import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel

from facestudio.evaluation.clip_score import ClipTextImageScorer
from facestudio.model.components import byte_level_tokenizer


def test_clip_t_is_the_cosine_of_text_and_image_embeddings(tmp_path):
    torch.manual_seed(0)
    tokenizer = byte_level_tokenizer()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(tmp_path / "clip")
    tokenizer.save_pretrained(tmp_path / "clip")
    scorer = ClipTextImageScorer(str(tmp_path / "clip"))
    image = Image.new("RGB", (48, 40), (200, 30, 30))
    first = scorer(image, "a red square")
    assert -1.0 <= first <= 1.0 and first == scorer(image, "a red square")
    assert first != scorer(image, "a portrait of a knight in armour")
