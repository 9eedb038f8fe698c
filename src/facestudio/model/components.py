"""Building the model's components: from configs with random weights (tests, benchmarks, the
start of training) or from pretrained checkpoints (hub ids or local folders).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerAncestralDiscreteScheduler,
    PriorTransformer,
    UnCLIPScheduler,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

from facestudio.model.hybrid_guidance import HybridGuidance
from facestudio.model.style_encoder import StyleEncoder


@dataclass(frozen=True)
class ComponentSizes:
    """Shapes of a model built from configs. `tiny()` is for tests; `sd15()` is SD-1.5-shaped."""

    unet_channels: tuple[int, ...] = (32, 64)
    unet_layers_per_block: int = 1
    unet_attention_head_dim: int | tuple[int, ...] = 8
    cross_attention_dim: int = 32
    latent_channels: int = 4
    vae_channels: tuple[int, ...] = (8, 16, 16, 16)
    vae_norm_groups: int = 8
    sample_size: int = 64
    clip_hidden: int = 32
    clip_layers: int = 2
    clip_heads: int = 4
    clip_image_size: int = 32
    clip_patch: int = 8
    style_towers: int = 1
    embedding_dim: int = 32
    prior_layers: int = 2
    prior_heads: int = 2
    num_tokens: int = 4
    face_dim: int = 128
    with_text: bool = True
    extra: dict = field(default_factory=dict)

    @classmethod
    def tiny(cls, **overrides) -> ComponentSizes:
        return cls(**overrides)

    @classmethod
    def sd15(cls, **overrides) -> ComponentSizes:
        """SD 1.5's U-Net and VAE shapes, ViT-L/14-sized style tower, Karlo-sized prior."""
        values = dict(
            unet_channels=(320, 640, 1280, 1280),
            unet_layers_per_block=2,
            unet_attention_head_dim=8,
            cross_attention_dim=768,
            vae_channels=(128, 256, 512, 512),
            vae_norm_groups=32,
            sample_size=512,
            clip_hidden=1024,
            clip_layers=24,
            clip_heads=16,
            clip_image_size=224,
            clip_patch=14,
            embedding_dim=768,
            prior_layers=20,
            prior_heads=32,
        )
        values.update(overrides)
        return cls(**values)


def byte_level_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A CLIP tokenizer over single bytes (514 tokens, no merges), for models built from configs."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + len(symbols) for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.json").write_text(json.dumps(vocab))
        Path(folder, "merges.txt").write_text("#version: 0.2\n")
        Path(folder, "tokenizer_config.json").write_text(
            json.dumps({"model_max_length": max_length, "tokenizer_class": "CLIPTokenizer"})
        )
        return CLIPTokenizer.from_pretrained(folder)


def random_components(sizes: ComponentSizes | None = None, seed: int = 0) -> dict:
    """Every pipeline component built from `sizes` with seeded random weights."""
    sizes = sizes or ComponentSizes.tiny()
    torch.manual_seed(seed)
    levels = len(sizes.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=sizes.sample_size // 2 ** (len(sizes.vae_channels) - 1),
        in_channels=sizes.latent_channels,
        out_channels=sizes.latent_channels,
        block_out_channels=sizes.unet_channels,
        layers_per_block=sizes.unet_layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",)
        if levels > 2
        else ("CrossAttnDownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1)
        if levels > 2
        else ("CrossAttnUpBlock2D",) * levels,
        cross_attention_dim=sizes.cross_attention_dim,
        attention_head_dim=sizes.unet_attention_head_dim,
        norm_num_groups=min(32, sizes.unet_channels[0]),
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(sizes.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(sizes.vae_channels),
        block_out_channels=sizes.vae_channels,
        latent_channels=sizes.latent_channels,
        norm_num_groups=sizes.vae_norm_groups,
        layers_per_block=1 if sizes.vae_channels[0] < 64 else 2,
        sample_size=sizes.sample_size,
    )
    vision = dict(
        hidden_size=sizes.clip_hidden,
        intermediate_size=4 * sizes.clip_hidden,
        num_hidden_layers=sizes.clip_layers,
        num_attention_heads=sizes.clip_heads,
        image_size=sizes.clip_image_size,
        patch_size=sizes.clip_patch,
        projection_dim=sizes.embedding_dim // sizes.style_towers,
    )
    style_encoder = StyleEncoder([vision] * sizes.style_towers)
    guidance = HybridGuidance(
        style_dim=style_encoder.embedding_dim,
        face_dim=sizes.face_dim,
        cross_attention_dim=sizes.cross_attention_dim,
        num_tokens=sizes.num_tokens,
    )
    components = dict(
        unet=unet,
        vae=vae,
        scheduler=default_scheduler(),
        guidance=guidance,
        style_encoder=style_encoder,
        tokenizer=None,
        text_encoder=None,
        prior=None,
        prior_scheduler=None,
    )
    if sizes.with_text:
        tokenizer = byte_level_tokenizer()
        text_encoder = CLIPTextModelWithProjection(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=sizes.embedding_dim,
                intermediate_size=4 * sizes.embedding_dim,
                num_hidden_layers=sizes.clip_layers,
                num_attention_heads=sizes.clip_heads,
                projection_dim=style_encoder.embedding_dim,
                max_position_embeddings=tokenizer.model_max_length,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        prior = PriorTransformer(
            num_attention_heads=sizes.prior_heads,
            attention_head_dim=sizes.embedding_dim // sizes.prior_heads,
            num_layers=sizes.prior_layers,
            embedding_dim=style_encoder.embedding_dim,
            num_embeddings=tokenizer.model_max_length,
            additional_embeddings=4,
        )
        components.update(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            prior=prior,
            prior_scheduler=default_prior_scheduler(),
        )
    return components


def default_scheduler() -> EulerAncestralDiscreteScheduler:
    """Stable Diffusion's training schedule, sampled with Euler Ancestral (the paper's sampler)."""
    return EulerAncestralDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
    )


def default_prior_scheduler() -> UnCLIPScheduler:
    return UnCLIPScheduler(
        num_train_timesteps=1000,
        variance_type="fixed_small_log",
        prediction_type="sample",
        clip_sample=True,
        clip_sample_range=5.0,
        beta_schedule="squaredcos_cap_v2",
    )


def pretrained_components(
    base: str,
    clip_models: list[str] | None = None,
    prior: str | None = None,
    face_dim: int = 128,
    num_tokens: int = 4,
    **load_kwargs,
) -> dict:
    """Components from pretrained checkpoints (hub ids or local folders; safetensors only), with
    a new, untrained `HybridGuidance`: the starting point for training.

    Args:
        base: a Stable Diffusion 1.x layout (folders `unet`, `vae`).
        clip_models: CLIP checkpoints for the style encoder (default: ViT-L/14).
        prior: a Karlo-style folder (`prior`, `prior_scheduler`, `text_encoder`, `tokenizer`),
            or None for a model without text.
    """
    load_kwargs.setdefault("use_safetensors", True)
    clip_models = clip_models or ["openai/clip-vit-large-patch14"]
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", **load_kwargs)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae", **load_kwargs)
    style_encoder = StyleEncoder.from_clip_models(
        clip_models, use_safetensors=load_kwargs["use_safetensors"]
    )
    components = dict(
        unet=unet,
        vae=vae,
        scheduler=default_scheduler(),
        style_encoder=style_encoder,
        tokenizer=None,
        text_encoder=None,
        prior=None,
        prior_scheduler=None,
    )
    if prior is not None:
        components.update(
            prior=PriorTransformer.from_pretrained(prior, subfolder="prior", **load_kwargs),
            prior_scheduler=UnCLIPScheduler.from_pretrained(prior, subfolder="prior_scheduler"),
            text_encoder=CLIPTextModelWithProjection.from_pretrained(
                prior, subfolder="text_encoder", **load_kwargs
            ),
            tokenizer=CLIPTokenizer.from_pretrained(prior, subfolder="tokenizer"),
        )
        if components["prior"].config.embedding_dim != style_encoder.embedding_dim:
            raise ValueError(
                f"the prior predicts {components['prior'].config.embedding_dim}-d image embeddings "
                f"but the style encoder gives {style_encoder.embedding_dim}-d; they must live in one space"
            )
    components["guidance"] = HybridGuidance(
        style_dim=style_encoder.embedding_dim,
        face_dim=face_dim,
        cross_attention_dim=unet.config.cross_attention_dim,
        num_tokens=num_tokens,
    )
    return components
