"""Two people from a real two-person photo as style: do segmented person regions help each
face look like its own person, against today's face-box regions?

Scenes as in `two_person_framing.py` (whose helpers this reuses): every `multi_person` photo
of ../shared/data in which the model's face backend finds exactly two faces, × pairs of
held-out people, 128 px wide in the photo's shape, auto-crop on (the default). Each scene is
prepared once (`prepare_request`: style photo cropped, people embedded) and generated twice
with the same seed, differing only in the layout: `auto_layout` with the bundled person
segmenter ("segmented", its face-box fallback where it finds nobody) and without it ("face
boxes"). Scored with the independent recogniser (YuNet + MobileFaceNet from ../shared/models):
both faces found, each face (left to right) closer to its own person's references than to the
other's, and the minimum per-person similarity.

    python benchmarks/segmenter_regions.py --heldout RUN/split/heldout.json \
        [--pairs 10] [--seeds 0] [--steps 25] [--max-references 8] \
        [--out benchmarks/results/segmenter_regions.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
from PIL import Image
from scipy import stats

from facestudio.evaluation.benchmark import load_definition
from facestudio.faces.segmentation import PersonSegmenter
from facestudio.interfaces.generate_command import default_model
from facestudio.pipeline import FaceStudioPipeline
from facestudio.pipeline.inputs import prepare_request
from facestudio.pipeline.layout import auto_layout
from facestudio.pipeline.model_info import ModelInfo
from facestudio.pipeline.request import GenerationRequest
from report import write_report
from two_person_framing import (
    WIDTH,
    independent_scorer,
    output_height,
    score_scene,
    summarize,
    two_person_photos,
)

CONDITIONS = ("face_boxes", "segmented")


def layouts(pipeline, prepared, style: Image.Image, segmenter) -> dict:
    """Both conditions' layouts, from the image "auto" lays people out from (the crop)."""
    image = prepared.framing.image if prepared.framing is not None else style
    size = (2, prepared.width, prepared.height, image, lambda: pipeline.face_analyzer)
    return {
        "face_boxes": auto_layout(*size, lambda: None),
        "segmented": auto_layout(*size, lambda: segmenter),
    }


def run_scene(pipeline, scorer, segmenter, style, two, references, seed, steps) -> dict:
    """Both conditions of one scene: one prepared request, two layouts, same seed."""
    request = GenerationRequest(
        people=[embedding for _, embedding in two],
        style_image=style,
        regions="auto",
        seed=seed,
        num_inference_steps=steps,
        width=WIDTH,
        height=output_height(style),
    )
    info = ModelInfo.from_pipeline(pipeline)
    prepared = prepare_request(request, lambda: pipeline.face_analyzer, info)
    rows = {}
    for condition, layout in layouts(pipeline, prepared, style, segmenter).items():
        result = pipeline(prepared=dataclasses.replace(prepared, layout=layout))
        rows[condition] = {**score_scene(scorer, result.images[0], references), **layout.describe()}
        rows[condition].pop("boxes", None)
    return rows


def paired_tests(rows: dict) -> dict:
    """Segmented against face boxes on the same scenes: exact sign test on both faces found
    (scenes that changed), paired t-test on the min-pair similarity."""
    found = [(a["all_detected"], b["all_detected"]) for a, b in zip(*rows.values(), strict=True)]
    gained = sum(1 for a, b in found if b and not a)
    lost = sum(1 for a, b in found if a and not b)
    sign = stats.binomtest(gained, gained + lost).pvalue if gained + lost else 1.0
    similarity = [[r["min_similarity"] for r in rows[c]] for c in CONDITIONS]
    same = np.allclose(*similarity)
    return {
        "both_found_gained": gained,
        "both_found_lost": lost,
        "sign_test_p": round(float(sign), 4),
        "min_similarity_t_test_p": 1.0
        if same
        else round(float(stats.ttest_rel(*similarity).pvalue), 4),
    }


def report(rows: dict, photos: list[str], seconds: float, out: str) -> None:
    used = [r["source"] for r in rows["segmented"]]
    summary = {condition: summarize(r) for condition, r in rows.items()}
    result = {
        "photos": photos,
        "scenes": len(rows["segmented"]),
        "scenes_segmented": used.count("segmented"),
        "seconds": round(seconds),
        "summary": summary,
        "paired": paired_tests(rows),
        "rows": rows,
    }
    print("| regions | images | both faces found | faces closer to own | min-pair similarity |")
    print("|---|---|---|---|---|")
    for condition, s in summary.items():
        print(
            f"| {condition} | {s['images']} | {s['both_faces_found']:.0%} | "
            f"{s['faces_closer_to_own']}/{s['faces_scored']} ({s['closer_to_own_rate']}) | "
            f"{s['min_pair_similarity']:.3f} |"
        )
    print(f"segmented regions used in {result['scenes_segmented']} of {result['scenes']} scenes")
    print(f"paired: {result['paired']}")
    write_report(result, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", required=True, help="facestudio eval definition (people)")
    parser.add_argument("--model", default=None, help="pipeline folder (default: bundled)")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--max-references", type=int, help="score against at most N photos")
    parser.add_argument("--out", default="benchmarks/results/segmenter_regions.json")
    args = parser.parse_args()

    # sizes=None: the recorded protocol (128 px wide at the photo's shape), outside the sizes
    # the bundled model declares (facestudio.pipeline.sizes), so the results stay comparable.
    pipeline = FaceStudioPipeline.from_pretrained(args.model or default_model(), sizes=None)
    pipeline.set_progress_bar_config(disable=True)
    scorer = independent_scorer(pipeline)
    segmenter = PersonSegmenter()
    identities = load_definition(args.heldout).identities[: 2 * args.pairs]
    people = [
        (i.name, pipeline.face_analyzer.multi_shot(i.condition).embedding) for i in identities
    ]
    references = {i.name: scorer.reference(i.reference[: args.max_references]) for i in identities}
    photos = two_person_photos(pipeline)
    rows = {condition: [] for condition in CONDITIONS}
    start = time.perf_counter()
    for photo in photos:
        style = Image.open(photo).convert("RGB")
        for pair in range(len(people) // 2):
            two = people[2 * pair : 2 * pair + 2]
            refs = [references[name] for name, _ in two]
            for seed in args.seeds:
                scene = run_scene(pipeline, scorer, segmenter, style, two, refs, seed, args.steps)
                for condition, row in scene.items():
                    row.update(photo=photo.name, people=[name for name, _ in two], seed=seed)
                    rows[condition].append(row)
        print(f"{photo.name}: done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    report(rows, [p.name for p in photos], time.perf_counter() - start, args.out)


if __name__ == "__main__":
    main()
