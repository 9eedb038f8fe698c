"""Does a prompt show in the images? Held-out people, judges other than the captioner.

    python recipes/text_prior/evaluate.py --model MODEL_WITH_TEXT --heldout SPLIT/heldout.json \
        --calibration PREPARED --out RUN/eval [--people 16 --seeds 2 --steps 20]

For each attribute value of the caption vocabulary, every held-out person (identity from their
first photo, as always) is generated with a training phrasing of it and with a phrasing never
seen in training, and without any prompt (the baseline), same seeds throughout. Judges
(judges.py: CIELAB, YuNet, a medium discriminant; thresholds fixed on real portraits before
any generated image is seen) say whether each image shows the value. Reported per value: the
share of images that show it with the prompt (seen and unseen phrasings) and without it.
Identity: Sim(GT), the independent recogniser's cosine to the person's *other* photos, with
and without prompts. `--sweep` adds an α sweep from a style image to a prompt.
Generated images are kept in OUT/images (npz per condition), so a re-run only judges.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judges import Judge, calibrate, measure_image

from facestudio.data.dataset import ReconstructionDataset
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig
from facestudio.model import latent_space
from facestudio.training.captions import measure, phrases, vocabulary
from facestudio.training.stylize import StylisedView, style_of

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def independent_analyzer(models: Path) -> FaceAnalyzer:
    onnx = OnnxBackendConfig(
        detector_model=str(models / "face_detection_yunet_2026may.onnx"),
        recognizer_model=str(models / "mobilefacenet.onnx"),
    )
    return FaceAnalyzer(FaceAnalyzerConfig(backend="onnx", onnx=onnx))


def held_out_people(path: Path, count: int) -> list[dict]:
    identities = json.loads(path.read_text())["identities"][:count]
    return [
        {"name": p["name"], "condition": p["condition"][0], "reference": p["reference"]}
        for p in identities
    ]


@torch.no_grad()
def through_autoencoder(vae, image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 portrait resized to the model's size and round-tripped through its autoencoder."""
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="area")
    decoded = latent_space.decode(vae, latent_space.encode(vae, pixels.to(vae.dtype)))
    return ((decoded[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def calibration_judge(pipe, prepared: Path, count: int, analyzer, size: int) -> Judge:
    """Judges fitted on `count` real portraits (half photos, half stylised twins)."""
    dataset = ReconstructionDataset(prepared)
    twins = StylisedView(dataset)
    picks = np.linspace(0, len(dataset) - 1, count // 2).astype(int)
    measures, labels = [], []
    for view, twin in ((dataset, False), (twins, True)):
        for i in picks:
            item = view[int(i)]
            image = (
                ((item["image"].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            )
            style = style_of(int(i)) if twin else None
            labels.append(
                measure(image, item["face_box"].numpy(), item["face_landmarks"].numpy(), style)
            )
            measures.append(measure_image(through_autoencoder(pipe.vae, image, size), analyzer))
    return calibrate(measures, labels, vocabulary())


def generate(pipe, embedding, seeds: list[int], steps: int, **kwargs) -> np.ndarray:
    images = []
    for seed in seeds:
        output = pipe(
            identities=[embedding],
            num_inference_steps=steps,
            seed=seed,
            output_type="np",
            **kwargs,
        )
        images.append(output.images[0])
    return np.stack(images)


def condition_images(out: Path, name: str, make) -> np.ndarray:
    """The images of one condition, generated once and kept (a re-run only judges)."""
    path = out / "images" / f"{name}.npz"
    if path.exists():
        return np.load(path)["images"]
    images = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images)
    return images


def prompt_for(attribute: str, value: str, unseen: bool, person: int) -> str:
    options = phrases(attribute, value, unseen)
    return options[person % len(options)]


def run_conditions(pipe, people, args, out: Path, values) -> dict[str, np.ndarray]:
    """{condition: (people × seeds, H, W, 3)} for the baseline and every value × phrasing."""
    seeds = list(range(args.seeds))
    conditions = {"baseline": lambda j: {}}
    for attribute, value in values:
        for kind in ("seen", "unseen"):
            conditions[f"{attribute}={value}|{kind}"] = lambda j, a=attribute, v=value, k=kind: {
                "prompt": prompt_for(a, v, k == "unseen", j),
                "prior_guidance_scale": args.prior_scale,
            }
    results = {}
    for name, settings in conditions.items():
        started = time.time()
        results[name] = condition_images(
            out,
            name.replace("|", "_").replace(" ", "-").replace("=", "-"),
            lambda s=settings: np.concatenate(
                [
                    generate(
                        pipe, p["embedding"], [1000 * j + k for k in seeds], args.steps, **s(j)
                    )
                    for j, p in enumerate(people)
                ]
            ),
        )
        print(f"{name}: {len(results[name])} images, {time.time() - started:.0f} s", flush=True)
    return results


def judge_rates(judge: Judge, measured: dict[str, list], values) -> dict:
    """Per value: the share of images that show it, with seen/unseen prompts and without."""
    table = {}
    for attribute, value in values:
        key = f"{attribute}={value}"
        if (attribute, value) not in judge.thresholds:
            table[key] = {"note": "no judge (too few calibration portraits)"}
            continue

        def rate(condition, a=attribute, v=value):
            return float(np.mean([judge.says(m, a, v) for m in measured[condition]]))

        table[key] = {
            "with_prompt": rate(f"{key}|seen"),
            "unseen_phrasing": rate(f"{key}|unseen"),
            "without_prompt": rate("baseline"),
            "judge_agreement_on_real": round(judge.agreement[(attribute, value)], 3),
        }
    return table


def identity(scorer, images: np.ndarray, references, seeds: int) -> np.ndarray:
    """Sim(GT) per image (misses count 0), people in order, `seeds` images each."""
    return np.array(
        [scorer.score(image, [references[i // seeds]]).similarity for i, image in enumerate(images)]
    )


def alpha_sweep(pipe, people, args, out: Path, judge: Judge, analyzer) -> dict:
    """Images from a style image (α = 1) to a prompt (α = 0): the share showing each side."""
    style_attribute, style_value = args.sweep_style_shows.split("=")
    prompt_attribute, prompt_value = args.sweep_prompt_shows.split("=")
    rows = {}
    for alpha in args.alphas:
        images = condition_images(
            out,
            f"sweep-alpha-{alpha}",
            lambda a=alpha: np.concatenate(
                [
                    generate(
                        pipe,
                        p["embedding"],
                        [1000 * j + k for k in range(args.seeds)],
                        args.steps,
                        prompt=args.sweep_prompt,
                        style_image=args.sweep_style,
                        alpha=a,
                        prior_guidance_scale=args.prior_scale,
                    )
                    for j, p in enumerate(people)
                ]
            ),
        )
        measured = [measure_image(image, analyzer) for image in images]
        rows[str(alpha)] = {
            "style_image_shows": float(
                np.mean([judge.says(m, style_attribute, style_value) for m in measured])
            ),
            "prompt_shows": float(
                np.mean([judge.says(m, prompt_attribute, prompt_value) for m in measured])
            ),
        }
    return {"style": args.sweep_style, "prompt": args.sweep_prompt, "alphas": rows}


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--heldout", type=Path, required=True)
    parser.add_argument("--calibration", type=Path, required=True, help="a prepared folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--face-models", type=Path, default=Path("../shared/models"))
    parser.add_argument("--people", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--calibration-count", type=int, default=600)
    parser.add_argument("--prior-scale", type=float, help="default: the prior's own")
    parser.add_argument("--values", nargs="*", help="attribute=value to evaluate (default: all)")
    parser.add_argument("--sweep-style", help="style image of the α sweep")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    parser.add_argument("--sweep-style-shows", default="tone=black and white")
    parser.add_argument("--sweep-prompt", default="a red background")
    parser.add_argument("--sweep-prompt-shows", default="background_colour=red")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from facestudio import FaceStudioPipeline
    from facestudio.evaluation.face_scoring import FaceScorer

    args = parse(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    pipe = FaceStudioPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    analyzer = independent_analyzer(args.face_models)
    values = [tuple(v.split("=")) for v in args.values] if args.values else vocabulary()
    judge = calibration_judge(pipe, args.calibration, args.calibration_count, analyzer, size)
    people = held_out_people(args.heldout, args.people)
    for person in people:
        person["embedding"] = pipe.face_analyzer.identity(person["condition"]).embedding
    images = run_conditions(pipe, people, args, args.out, values)
    measured = {name: [measure_image(i, analyzer) for i in batch] for name, batch in images.items()}
    scorer = FaceScorer(analyzer)
    references = [scorer.reference(p["reference"]) for p in people]
    baseline = identity(scorer, images["baseline"], references, args.seeds)
    prompted = np.stack(
        [identity(scorer, images[n], references, args.seeds) for n in images if n.endswith("|seen")]
    )
    report = {
        "people": len(people),
        "seeds": args.seeds,
        "steps": args.steps,
        "prior_guidance_scale": args.prior_scale,
        "values": judge_rates(judge, measured, values),
        "sim_gt": {"without_prompt": float(baseline.mean()), "with_prompt": float(prompted.mean())},
        "judge_agreement_on_real": {f"{a}={v}": r for (a, v), r in judge.agreement.items()},
    }
    if args.sweep_style:
        report["alpha_sweep"] = alpha_sweep(pipe, people, args, args.out, judge, analyzer)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
