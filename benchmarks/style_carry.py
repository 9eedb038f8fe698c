"""Styles that carry: does the output take a stylised style image's look, and how much
identity does each style keep?

Cases: held-out people (a `facestudio eval` definition, such as the split's `heldout.json`);
person i is generated from their first photo, with a style image made from the first photo of
held-out person i + 1 (another person, never trained on), framed as training portraits are,
face masked, then stylised by operators that are *not* the training stylisations
(training/stylize.py): an ink sketch (dodge-and-burn on blurred greys), a posterised painting
(k-means colour quantisation of an edge-preserving blur), greyscale, and a cold colour cast
(channel gains). Each is compared with the same person, seed and portrait unstylised.

Scores: the style is *taken* when the stylised output lies closer in look to its style image
than the unstylised output does (`facestudio.evaluation.style_carry`); identity is Sim(GT),
the independent recogniser's similarity (YuNet + MobileFaceNet from ../shared/models) to the
person's other photos, 0 for a missed face.

    python benchmarks/style_carry.py --heldout RUN/split/heldout.json [--model DIR] \
        [--people 20] [--out benchmarks/results/style_carry.json]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from facestudio.data.prepare import PORTRAIT_FACE_FRACTION
from facestudio.evaluation.benchmark import load_definition
from facestudio.evaluation.style_carry import styles_taken
from facestudio.faces.alignment import portrait_template, warp_to_template
from facestudio.faces.regions import mask_faces
from facestudio.images import load_image
from facestudio.interfaces.generate_command import default_model
from facestudio.pipeline import FaceStudioPipeline
from report import write_report
from two_person_framing import independent_scorer


def ink_sketch(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    blurred = cv2.GaussianBlur(255 - grey, (0, 0), 3)
    sketch = cv2.divide(grey, 255 - blurred, scale=256)
    return cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB)


def posterised_painting(image: np.ndarray, colours: int = 6) -> np.ndarray:
    smooth = cv2.bilateralFilter(image, 9, 60, 60)
    pixels = smooth.reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, colours, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    hsv = cv2.cvtColor(
        centres[labels.ravel()].reshape(image.shape).astype(np.uint8), cv2.COLOR_RGB2HSV
    )
    hsv[..., 1] = np.clip(hsv[..., 1].astype(int) * 3 // 2, 0, 255)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def greyscale(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def cold_cast(image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.float32) * (0.7, 0.95, 1.45), 0, 255).astype(np.uint8)


TEST_STYLES = {
    "ink_sketch": ink_sketch,
    "painting": posterised_painting,
    "greyscale": greyscale,
    "cold_cast": cold_cast,
}


def style_portrait(pipeline, photo: str, size: int) -> np.ndarray:
    """The photo framed as a training portrait at `size`, its face masked (a style input)."""
    image = load_image(photo)
    face = pipeline.face_analyzer.identity(image).face
    template = portrait_template(size, PORTRAIT_FACE_FRACTION)
    portrait = warp_to_template(image, face.landmarks, template, size)
    found = pipeline.face_analyzer.analyze(portrait).faces
    return mask_faces(portrait, [f.box for f in found[:1]], 1.2) if found else portrait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/style_carry.json")
    args = parser.parse_args()
    pipeline = FaceStudioPipeline.from_pretrained(args.model or default_model())
    pipeline.set_progress_bar_config(disable=True)
    scorer = independent_scorer(pipeline)
    size = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    people = load_definition(args.heldout).identities[: args.people]

    def generate(embedding, style):
        result = pipeline(
            identities=[embedding],
            style_image=style,
            num_inference_steps=args.steps,
            seed=args.seed,
            width=size,
            height=size,
            output_type="np",
        )
        return result.images[0]

    rows = {name: [] for name in ("plain", *TEST_STYLES)}
    for i, person in enumerate(people):
        other = people[(i + 1) % len(people)]
        portrait = style_portrait(pipeline, other.condition[0], size)
        references = scorer.reference(person.reference)
        embedding = pipeline.face_analyzer.multi_shot(person.condition).embedding
        for name in rows:
            style = portrait if name == "plain" else TEST_STYLES[name](portrait)
            image = generate(embedding, style)
            rows[name].append(
                {
                    "person": person.name,
                    "similarity": scorer.score(image, [references]).similarity,
                    "image": image,
                    "style": style,
                }
            )
    report = {"model": args.model or "bundled", "people": len(people), "size": size, "styles": {}}
    plain = [r["image"] for r in rows["plain"]]
    print("| style | taken | Sim(GT) |\n|---|---|---|")
    for name, cases in rows.items():
        taken = None
        if name != "plain":
            taken = float(
                np.mean(
                    styles_taken([c["image"] for c in cases], plain, [c["style"] for c in cases])
                )
            )
        sim = float(np.mean([c["similarity"] for c in cases]))
        report["styles"][name] = {"taken": taken, "sim_gt": round(sim, 4)}
        print(f"| {name} | {'—' if taken is None else f'{taken:.0%}'} | {sim:.3f} |")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
