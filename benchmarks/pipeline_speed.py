"""Generation speed: FaceStudioPipeline against diffusers' StableDiffusionPipeline with the
same U-Net, size and steps; the cost of each extra person and each extra reference photo.

Prints a table and writes JSON. On CPU it uses a medium random-weight model; with --gpu (a
CUDA device) it times the SD-1.5-shaped model in fp16 at 512×512 and reports peak memory.

    python benchmarks/pipeline_speed.py [--out benchmarks/results/pipeline_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPTextConfig, CLIPTextModel

from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.model.components import ComponentSizes, random_components
from facestudio.pipeline import FaceStudioPipeline
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

MEDIUM = ComponentSizes.tiny(
    unet_channels=(64, 128, 256),
    unet_layers_per_block=1,
    cross_attention_dim=256,
    unet_attention_head_dim=8,
    embedding_dim=64,
    with_text=False,
)


def build(sizes: ComponentSizes, device: str, dtype: torch.dtype):
    components = random_components(sizes)
    facestudio = FaceStudioPipeline(**components).to(device, dtype)
    tokenizer_source = random_components(ComponentSizes.tiny())["tokenizer"]
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer_source),
            hidden_size=sizes.cross_attention_dim,
            intermediate_size=4 * sizes.cross_attention_dim,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
        )
    )
    baseline = sd_baseline(facestudio, text_encoder, tokenizer_source).to(device, dtype)
    for pipe in (facestudio, baseline):
        pipe.set_progress_bar_config(disable=True)
    return facestudio, baseline


def sd_baseline(facestudio: FaceStudioPipeline, text_encoder, tokenizer) -> StableDiffusionPipeline:
    """diffusers' StableDiffusionPipeline on `facestudio`'s own U-Net weights, VAE and scheduler,
    through diffusers' stock attention (`stock_twin`): the plain baseline to compare with."""
    return StableDiffusionPipeline(
        vae=facestudio.vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=stock_twin(facestudio.unet),
        scheduler=facestudio.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def stock_twin(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """The same U-Net weights (shared tensors, no copy) behind diffusers' stock SDPA attention
    processors: FaceStudioPipeline puts its own processor on the U-Net it is given, and the
    baseline must be plain diffusers."""
    with torch.device("meta"):
        twin = UNet2DConditionModel.from_config(unet.config)
    twin.load_state_dict(unet.state_dict(), assign=True)
    leftovers = [name for name, t in [*twin.named_parameters(), *twin.named_buffers()] if t.is_meta]
    if leftovers:
        raise RuntimeError(f"the stock U-Net twin has unloaded tensors: {leftovers[:3]}")
    twin.set_attn_processor(AttnProcessor2_0())
    return twin.eval()


def timed(function, repeats: int, device: str) -> list[float]:
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/pipeline_speed.json")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--gpu", action="store_true", help="SD-1.5-shaped model, fp16, 512×512, 25 steps"
    )
    args = parser.parse_args()

    device = "cuda" if args.gpu else "cpu"
    dtype = torch.float16 if args.gpu else torch.float32
    sizes = ComponentSizes.sd15(with_text=False) if args.gpu else MEDIUM
    size, steps = (512, 25) if args.gpu else (args.size, args.steps)
    facestudio, baseline = build(sizes, device, dtype)
    faces = [np.random.default_rng(i).normal(size=128).astype(np.float32) for i in range(3)]
    common = dict(num_inference_steps=steps, height=size, width=size)

    def ours(people: int = 1, **extra):
        return lambda: facestudio(identities=faces[:people], seed=0, **common, **extra)

    def theirs():
        return baseline(
            prompt="", guidance_scale=5.0, generator=torch.Generator().manual_seed(0), **common
        )

    ours()(), theirs()  # warm-up
    runs = {
        "stable_diffusion": [],
        "facestudio_1_person": [],
        "facestudio_2_people": [],
        "facestudio_3_people": [],
    }
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        runs["stable_diffusion"] += timed(theirs, 1, device)
        runs["facestudio_1_person"] += timed(ours(1), 1, device)
        runs["facestudio_2_people"] += timed(ours(2), 1, device)
        runs["facestudio_3_people"] += timed(ours(3), 1, device)
    median = {name: statistics.median(values) for name, values in runs.items()}
    report = {
        "device": torch.cuda.get_device_name() if args.gpu else "cpu",
        "threads": torch.get_num_threads(),
        "size": size,
        "steps": steps,
        "unet_parameters_m": round(sum(p.numel() for p in facestudio.unet.parameters()) / 1e6, 1),
        "median_s": {k: round(v, 4) for k, v in median.items()},
        "ratio_facestudio_vs_sd": round(
            median["facestudio_1_person"] / median["stable_diffusion"], 3
        ),
        "ratio_2_people_vs_1": round(
            median["facestudio_2_people"] / median["facestudio_1_person"], 3
        ),
        "ratio_3_people_vs_1": round(
            median["facestudio_3_people"] / median["facestudio_1_person"], 3
        ),
    }
    if args.gpu:
        torch.cuda.reset_peak_memory_stats()
        ours()()
        report["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)

    photos = [SHARED / f"data/deepface/id05/img{n}.jpg" for n in (13, 14, 15, 57)]
    if all(p.exists() for p in photos):
        analyzer = FaceAnalyzer(FaceAnalyzerConfig(cache_dir=None))  # no cache: real cost
        facestudio.set_face_analyzer(analyzer)
        per_photos = {}
        for count in (1, 2, 4):
            per_photos[count] = statistics.median(
                timed(
                    lambda c=count: facestudio(identities=[photos[:c]], seed=0, **common), 3, device
                )
            )
        report["photos_median_s"] = {str(k): round(v, 4) for k, v in per_photos.items()}
        report["seconds_per_extra_photo"] = round((per_photos[4] - per_photos[1]) / 3, 4)

    print(f"{'variant':24} {'median s':>9}")
    for name, value in median.items():
        print(f"{name:24} {value:9.4f}")
    for key in (
        "ratio_facestudio_vs_sd",
        "ratio_2_people_vs_1",
        "ratio_3_people_vs_1",
        "seconds_per_extra_photo",
        "peak_gpu_memory_gb",
    ):
        if key in report:
            print(f"{key:24} {report[key]:9.4f}")
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
