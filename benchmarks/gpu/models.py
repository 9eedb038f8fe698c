"""The models the inference sections time: FaceStudioPipeline and diffusers'
StableDiffusionPipeline on the same U-Net, VAE and scheduler, with random weights built from
configs (the SD-1.5 shapes in the full suite: no hub is reachable, and speed does not depend on
the weights' values).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from facestudio.model.components import ComponentSizes, byte_level_tokenizer, random_components
from facestudio.pipeline import FaceStudioPipeline
from gpu.settings import SuiteSettings
from pipeline_speed import sd_baseline

PRESETS = {"sd15": ComponentSizes.sd15, "tiny": ComponentSizes.tiny}


def device_of(settings: SuiteSettings) -> str:
    return "cuda" if settings.mode == "full" else "cpu"


def build_pipelines(settings: SuiteSettings) -> dict:
    """Both pipelines on the suite's device and dtype, progress bars off, plus the inputs
    every timed call uses (face embeddings, a style image, the prompt)."""
    start = time.perf_counter()
    sizes = PRESETS[settings.preset](**settings.size_overrides)
    components = random_components(sizes, seed=0)
    tokenizer = byte_level_tokenizer()
    shape = settings.text_encoder
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=shape.vocab_size or len(tokenizer),
            hidden_size=sizes.cross_attention_dim,
            intermediate_size=shape.intermediate_size,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    built_s = time.perf_counter() - start
    device, dtype = device_of(settings), getattr(torch, settings.dtype)
    facestudio = FaceStudioPipeline(**components).to(device, dtype)
    baseline = sd_baseline(facestudio, text_encoder, tokenizer).to(device, dtype)
    for pipe in (facestudio, baseline):
        pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    face_dim = facestudio.guidance.config.face_dim
    return {
        "facestudio": facestudio,
        "baseline": baseline,
        "faces": [rng.normal(size=face_dim).astype(np.float32) for _ in range(3)],
        "style_image": rng.integers(0, 256, (settings.resolution,) * 2 + (3,), dtype=np.uint8),
        "random_init_s": round(built_s, 2),
        "to_device_s": round(time.perf_counter() - start - built_s, 2),
    }


def parameters_m(module: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 1)


def weights_gb(*modules: torch.nn.Module) -> float:
    return round(
        sum(p.numel() * p.element_size() for m in modules for p in m.parameters()) / 2**30, 3
    )


def attention_processors(unet: torch.nn.Module) -> list[str]:
    """The distinct attention processor classes in use (SDPA is `AttnProcessor2_0`)."""
    return sorted({type(p).__name__ for p in unet.attn_processors.values()})


def build_section(state: dict) -> dict:
    settings: SuiteSettings = state["settings"]
    state.update(build_pipelines(settings))
    facestudio, baseline = state["facestudio"], state["baseline"]
    return {
        "random_init_s": state["random_init_s"],
        "to_device_s": state["to_device_s"],
        "dtype": settings.dtype,
        "resolution": settings.resolution,
        "steps": settings.steps,
        "parameters_m": {
            "unet": parameters_m(facestudio.unet),
            "vae": parameters_m(facestudio.vae),
            "style_encoder": parameters_m(facestudio.style_encoder),
            "guidance": parameters_m(facestudio.guidance),
            "sd_text_encoder": parameters_m(baseline.text_encoder),
        },
        "attention": {
            "facestudio": attention_processors(facestudio.unet),
            "stable_diffusion": attention_processors(baseline.unet),
        },
    }


def build_rows(result: dict) -> list[tuple[str, str]]:
    counts = result["parameters_m"]
    return [
        (
            "random init / to device (s)",
            f"{result['random_init_s']:.1f} / {result['to_device_s']:.1f}",
        ),
        (
            "U-Net / VAE / style / text (M params)",
            "{unet:.0f} / {vae:.0f} / {style_encoder:.0f} / {sd_text_encoder:.0f}".format(**counts),
        ),
        (
            "attention: FaceStudio / SD",
            " / ".join(",".join(names) for names in result["attention"].values()),
        ),
    ]
