"""Resolution ceilings of one or more models on held-out people, compared pairwise.

For each model and portrait size: every held-out person's conditioning photo as a face-centred
portrait, scored by the independent recogniser as is and after a round trip through the
model's autoencoder (`facestudio.evaluation.benchmark.resolution_ceilings`). With two or more
models, the first is the baseline: the others get the paired difference of their
through-autoencoder scores and its paired t-test p-value. (The conditioning recogniser's view
is `encoder_similarity.py`: dlib's detector misses most 64-px faces, so it cannot score here.)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True, help="held-out benchmark definition")
    parser.add_argument("--model", action="append", required=True, help="repeat; first = base")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    definition = load_definition(args.benchmark)
    scorer = FaceScorer(independent_analyzer())
    references = {i.name: scorer.reference(i.reference) for i in definition.identities}
    results = {}
    for model in args.model:
        pipeline = FaceStudioPipeline.from_pretrained(model)
        results[model] = {
            size: resolution_ceilings(pipeline, definition, scorer, references, size)
            for size in args.sizes
        }
    report = {"people": len(definition.identities), "models": results, "compared": compare(results)}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(table(results, report["compared"]))


def independent_analyzer() -> FaceAnalyzer:
    """The judge: `facestudio eval`'s default independent detector and recogniser."""
    return FaceAnalyzer(
        FaceAnalyzerConfig(
            backend="onnx",
            onnx=OnnxBackendConfig(
                detector_model=scoring_model(None, DEFAULT_DETECTOR, "--detector-model"),
                recognizer_model=scoring_model(None, DEFAULT_RECOGNIZER, "--recognizer-model"),
            ),
        )
    )


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
