"""Two people from a real two-person photo as style: does the auto-crop help each face look
like its own person?

Scenes: every photo of ../shared/data's `multi_person` list in which the model's face backend
finds exactly two faces, × pairs of held-out people (a `facestudio eval` definition such as
the bundled model's `heldout.json`). Each scene is generated with `auto_crop=False` (the
style photo as is) and `auto_crop=True`, same seed, output 128 px wide in the photo's shape.
Scored as `facestudio eval` scores its multi-person cases, with the independent recogniser
(YuNet + MobileFaceNet from ../shared/models, not the dlib encoder the model conditions on):
both faces found, the minimum per-person similarity, and for each face (left to right) whether
it is closer to its own person's references than to the other's.

    python benchmarks/two_person_framing.py --heldout RUN/split/heldout.json \
        [--pairs 6] [--seeds 0] [--photos couple.jpg ...] [--max-references 8] \
        [--out benchmarks/results/two_person_framing.json]

Each scene is appended to OUT's `.jsonl` beside it as soon as it is scored, so several
processes (`--photos` splits the work) can share one run and an interrupted run keeps what it
did; `--summarize` only writes the report from that file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facestudio.evaluation.benchmark import _closer_to_own, load_definition
from facestudio.evaluation.face_scoring import FaceScorer
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig
from facestudio.interfaces.generate_command import default_model
from facestudio.pipeline import FaceStudioPipeline
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WIDTH = 128


def two_person_photos(pipeline) -> list[Path]:
    manifest = json.loads((SHARED / "data/MANIFEST.json").read_text())
    photos = [SHARED / "data" / p for p in manifest["multi_person"]]
    return [p for p in photos if len(pipeline.face_analyzer.analyze(p).faces) == 2]


def output_height(photo: Image.Image) -> int:
    """The photo's shape at 128 px wide, in multiples of 16 px (as the eval recipe does)."""
    return max(16, round(photo.height * WIDTH / photo.width / 16) * 16)


def independent_scorer(pipeline) -> FaceScorer:
    """YuNet + MobileFaceNet from ../shared/models: not the encoder the model conditions on."""
    models = SHARED / "models"
    onnx = OnnxBackendConfig(
        detector_model=str(models / "face_detection_yunet_2026may.onnx"),
        recognizer_model=str(models / "mobilefacenet.onnx"),
    )
    analyzer = FaceAnalyzer(FaceAnalyzerConfig(backend="onnx", onnx=onnx))
    return FaceScorer(analyzer, pipeline.face_analyzer.backend.recognizer_id())


def score_scene(scorer, image: Image.Image, references) -> dict:
    """A two-person image as `facestudio eval` scores its multi-person cases."""
    pixels = np.asarray(image.convert("RGB"))
    result = scorer.score(pixels, references)
    own = _closer_to_own(scorer, pixels, scorer.analyzer.detect(pixels), references)
    return {
        "all_detected": result.detected,
        "min_similarity": result.similarity,
        "per_person": result.per_person,
        "closer_to_own": own,
    }


def run_scene(pipeline, scorer, style, people, references, seed, steps, auto_crop) -> dict:
    result = pipeline(
        identities=[embedding for _, embedding in people],
        style_image=style,
        regions="auto",
        seed=seed,
        num_inference_steps=steps,
        width=WIDTH,
        height=output_height(style),
        auto_crop=auto_crop,
    )
    return {
        **score_scene(scorer, result.images[0], references),
        "style_crop": result.metadata[0]["style_crop"],
    }


def summarize(rows: list[dict]) -> dict:
    closer = [c for r in rows if r["closer_to_own"] for c in r["closer_to_own"]]
    return {
        "images": len(rows),
        "both_faces_found": round(float(np.mean([r["all_detected"] for r in rows])), 4),
        "faces_scored": len(closer),
        "faces_closer_to_own": int(sum(closer)),
        "closer_to_own_rate": round(float(np.mean(closer)), 4) if closer else None,
        "min_pair_similarity": round(float(np.mean([r["min_similarity"] for r in rows])), 4),
    }


def report(rows_path: Path, out: str) -> None:
    rows = {"as_is": [], "auto_crop": []}
    for line in rows_path.read_text().splitlines():
        row = json.loads(line)
        rows[row.pop("condition")].append(row)
    report = {
        "photos": sorted({r["photo"] for r in rows["as_is"]}),
        "scenes": len(rows["as_is"]),
        "summary": {condition: summarize(r) for condition, r in rows.items()},
        "rows": rows,
    }
    print("| style photo | images | both faces found | faces closer to own | min-pair similarity |")
    print("|---|---|---|---|---|")
    for condition, s in report["summary"].items():
        print(
            f"| {condition} | {s['images']} | {s['both_faces_found']:.0%} | "
            f"{s['faces_closer_to_own']}/{s['faces_scored']} ({s['closer_to_own_rate']}) | "
            f"{s['min_pair_similarity']:.3f} |"
        )
    write_report(report, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", required=True, help="facestudio eval definition (people)")
    parser.add_argument("--model", default=None, help="pipeline folder (default: bundled)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--first-pair", type=int, default=0, help="skip the pairs before this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--photos", nargs="+", help="only these two-person photos (file names)")
    parser.add_argument("--max-references", type=int, help="score against at most N photos")
    parser.add_argument("--summarize", action="store_true", help="only write the report")
    parser.add_argument("--out", default="benchmarks/results/two_person_framing.json")
    args = parser.parse_args()
    rows_path = Path(args.out).with_suffix(".jsonl")
    if args.summarize:
        report(rows_path, args.out)
        return

    # sizes=None: the recorded protocol (128 px wide at the photo's shape), outside the sizes
    # the bundled model declares (facestudio.pipeline.sizes), so the results stay comparable.
    pipeline = FaceStudioPipeline.from_pretrained(args.model or default_model(), sizes=None)
    pipeline.set_progress_bar_config(disable=True)
    scorer = independent_scorer(pipeline)
    first = 2 * args.first_pair
    identities = load_definition(args.heldout).identities[first : first + 2 * args.pairs]
    people = [
        (
            i.name,
            pipeline.face_analyzer.multi_shot(i.condition).embedding,
            i.reference[: args.max_references],
        )
        for i in identities
    ]
    references = {name: scorer.reference(photos) for name, _, photos in people}
    photos = [p for p in two_person_photos(pipeline) if not args.photos or p.name in args.photos]
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for photo in photos:
        style = Image.open(photo).convert("RGB")
        for pair in range(len(people) // 2):
            two = people[2 * pair : 2 * pair + 2]
            refs = [references[name] for name, _, _ in two]
            for seed in args.seeds:
                for condition, auto_crop in (("as_is", False), ("auto_crop", True)):
                    row = run_scene(
                        pipeline,
                        scorer,
                        style,
                        [p[:2] for p in two],
                        refs,
                        seed,
                        args.steps,
                        auto_crop,
                    )
                    row.update(
                        condition=condition, photo=photo.name, people=[p[0] for p in two], seed=seed
                    )
                    with rows_path.open("a") as rows:
                        rows.write(json.dumps(row) + "\n")
        print(f"{photo.name}: done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    report(rows_path, args.out)


if __name__ == "__main__":
    main()
