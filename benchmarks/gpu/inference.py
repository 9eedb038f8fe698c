"""Inference sections: FaceStudio against diffusers' SD pipeline and 1 against 2 and 3 people
(interleaved in one loop, so clock and thermal drift hit every variant alike), and peak memory.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from gpu.runner import rounds
from gpu.settings import SuiteSettings

PROMPT = "a photo of a person"


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(function: Callable[[], object]) -> float:
    synchronize()
    start = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - start


def facestudio_call(state: dict, people: int = 1, **extra) -> Callable[[], object]:
    """One image of `people` people with a style image; equal style and face scales make it
    two guidance terms per step, the same U-Net batch as SD's classifier-free guidance."""
    settings: SuiteSettings = state["settings"]
    identities = extra.pop("identities", state["faces"][:people])
    regions = (
        side_by_side_regions(len(identities), settings.resolution) if len(identities) > 1 else None
    )
    return lambda: state["facestudio"](
        identities=identities,
        regions=regions,
        style_image=state["style_image"],
        seed=0,
        num_inference_steps=settings.steps,
        height=settings.resolution,
        width=settings.resolution,
        style_guidance_scale=settings.guidance_scale,
        face_guidance_scale=settings.guidance_scale,
        **extra,
    )


def side_by_side_regions(people: int, size: int) -> list[tuple[int, int, int, int]]:
    """Explicit regions, people side by side: the timed calls measure the U-Net and its routing,
    not the detection of people in the style image (CPU work, and dlib, which a GPU machine
    need not have)."""
    edges = [round(i * size / people) for i in range(people + 1)]
    return [(edges[i], 0, edges[i + 1], size) for i in range(people)]


def baseline_call(state: dict) -> Callable[[], object]:
    settings: SuiteSettings = state["settings"]
    return lambda: state["baseline"](
        prompt=PROMPT,
        guidance_scale=settings.guidance_scale,
        num_inference_steps=settings.steps,
        height=settings.resolution,
        width=settings.resolution,
        generator=torch.Generator().manual_seed(0),
    )


def interleaved(
    state: dict, variants: dict[str, Callable[[], object]], repeats: int, warm_up: bool = True
) -> dict:
    """Warm each variant up once (unless the caller did), then time them in turn;
    {name: [seconds, ...]}."""
    for function in variants.values() if warm_up else ():
        function()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in rounds(state, repeats):
        for name, function in variants.items():
            times[name].append(seconds(function))
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: round(statistics.median(values), 4) for name, values in times.items()}


def inference_section(state: dict) -> dict:
    settings: SuiteSettings = state["settings"]
    variants = {
        "stable_diffusion": baseline_call(state),
        "facestudio_1_person": facestudio_call(state, 1),
        "facestudio_2_people": facestudio_call(state, 2),
        "facestudio_3_people": facestudio_call(state, 3),
    }
    times = interleaved(state, variants, settings.repeats)
    median = medians(times)
    one = median["facestudio_1_person"]
    return {
        **watermark_cost(settings.resolution),
        "median_s_per_image": median,
        "times_s": {k: [round(v, 4) for v in values] for k, values in times.items()},
        "rounds": len(times["stable_diffusion"]),
        "ratio_facestudio_vs_sd": round(one / median["stable_diffusion"], 3),
        "ratio_2_people_vs_1": round(median["facestudio_2_people"] / one, 3),
        "ratio_3_people_vs_1": round(median["facestudio_3_people"] / one, 3),
    }


def watermark_cost(size: int) -> dict:
    """Whether FaceStudio's images carry the invisible watermark at this size, and what
    embedding it costs per image (on the CPU; part of FaceStudio's s/image, not of SD's)."""
    from facestudio.provenance import watermark

    method = watermark.method_for(size, size)
    if method is None:
        return {"watermark": None}
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    times = [seconds(lambda: watermark.embed(rgb)) for _ in range(3)]
    return {"watermark": method, "watermark_s_per_image": round(statistics.median(times), 4)}


def inference_rows(result: dict) -> list[tuple[str, str]]:
    median = result["median_s_per_image"]
    rows = [(f"{name} (s/image)", f"{value:.4f}") for name, value in median.items()]
    rows += [
        (key, f"{result[key]:.3f}")
        for key in ("ratio_facestudio_vs_sd", "ratio_2_people_vs_1", "ratio_3_people_vs_1")
    ]
    if result.get("watermark"):
        rows.append(
            (f"watermark {result['watermark']} (s/image)", f"{result['watermark_s_per_image']:.4f}")
        )
    return [*rows, ("timed rounds", str(result["rounds"]))]


def peak_gb(function: Callable[[], object]) -> dict:
    """Peak CUDA memory of one call: allocated by tensors, and reserved by the allocator."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    function()
    synchronize()
    return {
        "resident_before_gb": round(before / 2**30, 3),
        "peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 3),
    }


def memory_section(state: dict) -> dict:
    """Each pipeline measured alone on the GPU: the other's own encoder waits on the CPU."""
    from gpu.models import weights_gb

    facestudio, baseline = state["facestudio"], state["baseline"]
    result = {
        "weights_gb": {
            "facestudio": weights_gb(
                facestudio.unet, facestudio.vae, facestudio.guidance, facestudio.style_encoder
            ),
            "stable_diffusion": weights_gb(baseline.unet, baseline.vae, baseline.text_encoder),
        }
    }
    if not torch.cuda.is_available() or state["settings"].mode != "full":
        result["peak"] = None
        result["note"] = "peak memory is measured on CUDA only; weights are counted here"
        return result
    device = facestudio.device
    baseline.text_encoder.to("cpu")
    try:
        result["peak"] = {
            "facestudio_1_person": peak_gb(facestudio_call(state, 1)),
            "facestudio_3_people": peak_gb(facestudio_call(state, 3)),
        }
    finally:
        baseline.text_encoder.to(device)
    facestudio.style_encoder.to("cpu")
    try:
        result["peak"]["stable_diffusion"] = peak_gb(baseline_call(state))
    finally:
        facestudio.style_encoder.to(device)
    result["peak_memory_gb"] = result["peak"]["facestudio_1_person"]["peak_allocated_gb"]
    return result


def memory_rows(result: dict) -> list[tuple[str, str]]:
    weights = result["weights_gb"]
    rows = [
        (
            "weights FaceStudio / SD (GB)",
            f"{weights['facestudio']:.3f} / {weights['stable_diffusion']:.3f}",
        )
    ]
    for name, peak in (result.get("peak") or {}).items():
        rows.append(
            (
                f"peak {name} (GB alloc/reserved)",
                f"{peak['peak_allocated_gb']:.2f} / {peak['peak_reserved_gb']:.2f}",
            )
        )
    return rows
