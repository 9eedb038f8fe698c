"""Training speed of the full-size model: samples/s and peak memory of the trainer's own step
(the `Objective` of `train.target = "diffusion"`: reconstruction loss, bf16 autocast,
backward, gradient clipping, the trainer's optimizer) at several batch sizes, with gradient
checkpointing off and on, and with 8-bit Adam where bitsandbytes imports.

The model comes from benchmarks/training_speed.py's `MODELS` (the same SD-1.5-shaped entry its
--gpu mode trains), built by the trainer's `initial_pipeline`. Latents are cached (as
`cache_latents = true` does) and the batch stays on the device: the numbers are the model's
step, not data loading.
"""

from __future__ import annotations

import gc
import time

import torch

from facestudio.model.latent_space import encode as encode_latents
from facestudio.training.config import OptimizationConfig, config_from_dict
from facestudio.training.loop import _optimizer, initial_pipeline
from facestudio.training.objectives import Objective
from gpu.inference import synchronize
from gpu.models import device_of, parameters_m
from gpu.settings import SuiteSettings, TrainingRun
from training_speed import MODELS


def build_model(settings: SuiteSettings, device: str) -> tuple[Objective, int]:
    """The diffusion objective over a freshly built pipeline, frozen parts on `device`."""
    spec = MODELS[settings.training_model]
    config = config_from_dict(
        {
            "model": {"preset": spec.get("preset", "tiny"), "sizes": spec["sizes"]},
            "train": {"target": "diffusion", "cache_latents": True},
        },
        "gpu suite",
    )
    objective = Objective.build(initial_pipeline(config.model), config)
    objective.frozen.to(device)
    objective.to(device).train()
    return objective, spec["resolution"]


def synthetic_batch(objective: Objective, size: int, resolution: int, device: str) -> dict:
    """A batch shaped like ReconstructionDataset's, with its latents in the latent cache."""
    generator = torch.Generator().manual_seed(size)
    vae = objective.frozen.vae
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    objective.latent_cache = torch.randn(
        size,
        vae.config.latent_channels,
        resolution // factor,
        resolution // factor,
        generator=generator,
    )
    pixels = torch.rand(size, 3, resolution, resolution, generator=generator)
    return {
        "image": (pixels * 2 - 1).to(device),
        "style_pixels": pixels.to(device),
        "face": torch.randn(size, objective.guidance.config.face_dim, generator=generator).to(
            device
        ),
        "face_box": torch.zeros(size, 4, device=device),
        "index": torch.arange(size),
    }


def train_steps(model, optimizer, parameters, batch, steps: int, dtype, device: str) -> None:
    for step in range(steps):
        with torch.autocast(device, dtype=dtype):
            loss = model(batch, torch.Generator().manual_seed(step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, OptimizationConfig().max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def measure(model: Objective, run: TrainingRun, settings: SuiteSettings, resolution: int) -> dict:
    """One configuration: warm-up steps, then timed steps; OOM is a result, not a failure."""
    device = device_of(settings)
    if run.optimizer == "adamw8bit":
        try:
            import bitsandbytes  # noqa: F401
        except Exception as exc:
            return {"status": "not available", "reason": f"bitsandbytes: {type(exc).__name__}"}
    if run.checkpointing:
        model.unet.enable_gradient_checkpointing()
    else:
        model.unet.disable_gradient_checkpointing()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(
        parameters, OptimizationConfig(use_8bit_adam=run.optimizer == "adamw8bit")
    )
    batch = synthetic_batch(model, run.batch_size, resolution, device)
    dtype = getattr(torch, settings.training_dtype)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        train_steps(
            model, optimizer, parameters, batch, settings.training_warmup_steps, dtype, device
        )
        synchronize()
        start = time.perf_counter()
        train_steps(model, optimizer, parameters, batch, settings.training_steps, dtype, device)
        synchronize()
        elapsed = time.perf_counter() - start
    except torch.cuda.OutOfMemoryError:
        return {"status": "out of memory"}
    finally:
        del optimizer, batch
        model.zero_grad(set_to_none=True)
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    samples_per_s = run.batch_size * settings.training_steps / elapsed
    result = {
        "status": "ok",
        "samples_per_s": round(samples_per_s, 2),
        "s_per_step": round(elapsed / settings.training_steps, 4),
        "gpu_hours_per_million_samples": round(1e6 / samples_per_s / 3600, 2),
    }
    if device == "cuda":
        result["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def latent_cache_speed(objective: Objective, resolution: int, device: str, batch: int) -> float:
    """Images/s of the frozen VAE encoding training images once (`cache_latents = true`)."""
    images = torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1
    with torch.no_grad():
        encode_latents(objective.frozen.vae, images)  # warm-up
        synchronize()
        start = time.perf_counter()
        encode_latents(objective.frozen.vae, images)
        synchronize()
    return round(batch / (time.perf_counter() - start), 2)


def training_section(state: dict) -> dict:
    """Every configuration of the settings on one freshly built model; the inference
    pipelines wait on the CPU meanwhile, and the training model is gone before they return."""
    settings: SuiteSettings = state["settings"]
    offloaded = offload_inference(state, device_of(settings))
    try:
        return measure_all(settings, state["box_end"])
    finally:
        restore_inference(offloaded)


def measure_all(settings: SuiteSettings, box_end: float) -> dict:
    device = device_of(settings)
    model, resolution = build_model(settings, device)
    cache_speed = latent_cache_speed(
        model, resolution, device, settings.training_runs[0].batch_size
    )
    runs, last = {}, 0.0
    for run in settings.training_runs:
        if last and time.monotonic() + 1.5 * last > box_end:
            runs[run.label] = {**vars(run), "status": "skipped", "reason": "time box"}
            continue
        started = time.monotonic()
        runs[run.label] = {**vars(run), **measure(model, run, settings, resolution)}
        last = time.monotonic() - started
    return {
        "model": settings.training_model,
        "resolution": resolution,
        "dtype": settings.training_dtype,
        "trainable_parameters_m": round(
            sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6, 1
        ),
        "unet_parameters_m": parameters_m(model.unet),
        "steps_timed": settings.training_steps,
        "latent_cache_images_per_s": cache_speed,
        "runs": runs,
    }


def offload_inference(state: dict, device: str) -> list:
    """Move the inference pipelines' weights to the CPU so training's peak memory is its own."""
    if device != "cuda" or "facestudio" not in state:
        return []
    pipelines = [state["facestudio"], state["baseline"]]
    for pipe in pipelines:
        pipe.to("cpu")
    torch.cuda.empty_cache()
    return pipelines


def restore_inference(pipelines: list) -> None:
    gc.collect()
    if pipelines:
        torch.cuda.empty_cache()
    for pipe in pipelines:
        pipe.to("cuda")


def training_rows(result: dict) -> list[tuple[str, str]]:
    rows = [
        ("VAE encode for the latent cache", f"{result['latent_cache_images_per_s']:.1f} images/s")
    ]
    for label, run in result["runs"].items():
        if run["status"] != "ok":
            rows.append((label, run["status"]))
            continue
        memory = f", {run['peak_memory_gb']:.1f} GB" if "peak_memory_gb" in run else ""
        rows.append((label, f"{run['samples_per_s']:.1f}/s{memory}"))
    return rows
