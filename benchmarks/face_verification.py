"""Face verification quality of each backend on the labelled photos in ../shared/data.

Prints a table and writes JSON: ROC AUC per small labelled set, pooled over them, and on a
2,000-pair LFW sample; the accuracy-maximising threshold fitted on a disjoint LFW sample
(the source of each backend's default threshold).

    python benchmarks/face_verification.py [--out benchmarks/results/face_verification.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from facestudio.evaluation.verification import (
    all_pairs,
    best_threshold,
    load_manifest_sets,
    roc_auc,
    sample_pairs,
)
from facestudio.faces import FaceAnalyzerConfig, OnnxBackendConfig
from facestudio.faces.batch import identities_of_files
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def backend_configs(cache_dir: str | None) -> dict[str, FaceAnalyzerConfig]:
    onnx = OnnxBackendConfig(
        detector_model=str(SHARED / "models/face_detection_yunet_2026may.onnx"),
        recognizer_model=str(SHARED / "models/mobilefacenet.onnx"),
    )
    return {
        "dlib": FaceAnalyzerConfig(backend="dlib", cache_dir=cache_dir),
        "onnx": FaceAnalyzerConfig(backend="onnx", onnx=onnx, cache_dir=cache_dir),
    }


def score_pairs(pairs, embeddings) -> tuple[list[bool], list[float], int]:
    labels, scores, skipped = [], [], 0
    for a, b, same in pairs:
        if embeddings.get(a) is None or embeddings.get(b) is None:
            skipped += 1
            continue
        labels.append(same)
        scores.append(float(embeddings[a] @ embeddings[b]))
    return labels, scores, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/face_verification.json")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="reuse embeddings across runs")
    parser.add_argument("--backends", nargs="+", default=["dlib", "onnx"])
    args = parser.parse_args()

    sets = load_manifest_sets(SHARED / "data/MANIFEST.json")
    lfw = sets.pop("lfw")
    test_pairs = sample_pairs(lfw, 1000, 1000, seed=0)
    test_people = {photo.rsplit("/", 2)[-2] for a, b, _ in test_pairs for photo in (a, b)}
    rest = {p: photos for p, photos in lfw.items() if p not in test_people}
    calibration_pairs = sample_pairs(rest, 500, 500, seed=1)
    report = {"lfw_test_pairs": len(test_pairs), "lfw_calibration_pairs": len(calibration_pairs)}
    rows = []
    for name, config in backend_configs(args.cache_dir).items():
        if name not in args.backends:
            continue
        photos = sorted(
            {p for people in sets.values() for photos in people.values() for p in photos}
            | {p for pair in test_pairs + calibration_pairs for p in pair[:2]}
        )
        start = time.perf_counter()
        results = identities_of_files(config, photos, workers=args.workers)
        seconds = time.perf_counter() - start
        embeddings = {r.path: r.embedding for r in results}
        entry = {"photos": len(photos), "seconds": round(seconds, 1), "sets": {}}
        pooled = {}
        for set_name, people in sets.items():
            labels, scores, skipped = score_pairs(all_pairs(people), embeddings)
            entry["sets"][set_name] = {
                "auc": roc_auc(labels, scores),
                "pairs": len(labels),
                "skipped": skipped,
            }
            pooled.update({f"{set_name}/{p}": photos for p, photos in people.items()})
        labels, scores, skipped = score_pairs(all_pairs(pooled), embeddings)
        entry["sets"]["pooled_small_sets"] = {
            "auc": roc_auc(labels, scores),
            "pairs": len(labels),
            "skipped": skipped,
        }
        labels, scores, skipped = score_pairs(test_pairs, embeddings)
        entry["sets"]["lfw_2000"] = {
            "auc": roc_auc(labels, scores),
            "pairs": len(labels),
            "skipped": skipped,
        }
        cal_labels, cal_scores, _ = score_pairs(calibration_pairs, embeddings)
        fit = best_threshold(cal_labels, cal_scores)
        test_accuracy = float(np.mean((np.asarray(scores) >= fit.threshold) == np.asarray(labels)))
        entry["threshold"] = {
            "fitted_on_calibration": round(fit.threshold, 4),
            "calibration_accuracy": round(fit.accuracy, 4),
            "lfw_2000_accuracy_at_fitted": round(test_accuracy, 4),
        }
        report[name] = entry
        for set_name, values in entry["sets"].items():
            rows.append((name, set_name, values["pairs"], values["skipped"], values["auc"]))
        rows.append((name, f"threshold {fit.threshold:.3f}", len(cal_labels), 0, test_accuracy))

    print(f"{'backend':8} {'set':26} {'pairs':>7} {'skipped':>8} {'AUC/acc':>8}")
    for backend, set_name, pairs, skipped, value in rows:
        print(f"{backend:8} {set_name:26} {pairs:7d} {skipped:8d} {value:8.4f}")
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
