"""Resolution ceilings of one or more models on held-out people, compared pairwise.

For each model and portrait size: every held-out person's conditioning photo as a face-centred
portrait, scored as is and after a round trip through the model's autoencoder
(`facestudio.evaluation.benchmark.resolution_ceilings`), by two recognisers: the independent
one (the judge) and the model's own conditioning recogniser (dlib; biased, reported beside it
to show a decoder that pleases the encoder it was trained against without looking more like
the person). With two or more models, the first is the baseline: the others get the paired
difference of their through-autoencoder scores and its paired t-test p-value.

    python recipes/identity_loss/ceilings.py --benchmark RUN/split/heldout.json \
        --model bundled --model RUN/decoder-identity-exported --sizes 64 96 128 --out ceilings.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from facestudio.evaluation.benchmark import load_definition, resolution_ceilings
from facestudio.evaluation.face_scoring import FaceScorer
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig
from facestudio.interfaces.eval_command import (
    DEFAULT_DETECTOR,
    DEFAULT_RECOGNIZER,
    scoring_model,
)
from facestudio.pipeline import FaceStudioPipeline

JUDGES = ("independent", "conditioning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True, help="held-out benchmark definition")
    parser.add_argument("--model", action="append", required=True, help="repeat; first = base")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    definition = load_definition(args.benchmark)
    results = {judge: {} for judge in JUDGES}
    for model in args.model:
        pipeline = FaceStudioPipeline.from_pretrained(model)
        for judge, scorer in scorers(pipeline).items():
            references = {i.name: scorer.reference(i.reference) for i in definition.identities}
            results[judge][model] = {
                size: resolution_ceilings(pipeline, definition, scorer, references, size)
                for size in args.sizes
            }
    compared = {judge: compare(results[judge]) for judge in JUDGES}
    report = {"people": len(definition.identities), "models": results, "compared": compared}
    Path(args.out).write_text(json.dumps(report, indent=2))
    for judge in JUDGES:
        print(f"\n{judge} recogniser\n{table(results[judge], compared[judge])}")


def scorers(pipeline: FaceStudioPipeline) -> dict[str, FaceScorer]:
    """The independent judge and the model's own conditioning recogniser (biased)."""
    independent = FaceAnalyzer(
        FaceAnalyzerConfig(
            backend="onnx",
            onnx=OnnxBackendConfig(
                detector_model=scoring_model(None, DEFAULT_DETECTOR, "--detector-model"),
                recognizer_model=scoring_model(None, DEFAULT_RECOGNIZER, "--recognizer-model"),
            ),
        )
    )
    own = pipeline.face_analyzer.backend.recognizer_id()
    return {
        "independent": FaceScorer(independent, own),
        "conditioning": FaceScorer(pipeline.face_analyzer, own, allow_biased=True),
    }


def compare(results: dict) -> dict:
    """Paired difference of each model's through-autoencoder scores to the first model's."""
    base_name, *others = list(results)
    compared = {}
    for name in others:
        for size, ceiling in results[name].items():
            base = np.asarray(results[base_name][size]["autoencoder_scores"])
            mine = np.asarray(ceiling["autoencoder_scores"])
            compared[f"{name} @ {size}"] = {
                "difference": round(float((mine - base).mean()), 4),
                "p_value": float(stats.ttest_rel(mine, base).pvalue),
            }
    return compared


def table(results: dict, compared: dict) -> str:
    lines = ["| model | size | portrait | through autoencoder |", "|---|---|---|---|"]
    for name, by_size in results.items():
        for size, c in by_size.items():
            lines.append(
                f"| {name} | {size} | {c['portrait']:.3f} | {c['portrait_through_autoencoder']:.3f} |"
            )
    for key, value in compared.items():
        lines.append(
            f"{key}: {value['difference']:+.4f} (paired t-test p = {value['p_value']:.2g})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
