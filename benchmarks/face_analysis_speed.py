"""Face analysis speed per backend: detection and embedding, one process and all cores.

Prints a table and writes JSON. Inputs: the group photos and 200 LFW photos in ../shared/data.
No cache is used, so every number is real computation. Decoding is not timed.

    python benchmarks/face_analysis_speed.py [--out benchmarks/results/face_analysis_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from facestudio.evaluation.verification import load_manifest_sets
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig
from facestudio.images import load_image
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def config_for(backend: str) -> FaceAnalyzerConfig:
    onnx = OnnxBackendConfig(
        detector_model=str(SHARED / "models/face_detection_yunet_2026may.onnx"),
        recognizer_model=str(SHARED / "models/mobilefacenet.onnx"),
        threads=1,
    )
    return FaceAnalyzerConfig(backend=backend, onnx=onnx, cache_dir=None)


def measure(backend: str, paths: list[str]) -> dict:
    """Detect and embed every face of each photo; seconds spent in each step."""
    os.environ["OMP_NUM_THREADS"] = "1"
    analyzer = FaceAnalyzer(config_for(backend))
    images = [load_image(p) for p in paths]
    detect_s = embed_s = 0.0
    faces = 0
    for image in images:
        start = time.perf_counter()
        found = analyzer.detect(image)
        middle = time.perf_counter()
        for face in found:
            analyzer.embed(image, face)
        detect_s += middle - start
        embed_s += time.perf_counter() - middle
        faces += len(found)
    return {"images": len(images), "faces": faces, "detect_s": detect_s, "embed_s": embed_s}


def run(backend: str, paths: list[str], workers: int) -> dict:
    if workers == 1:
        start = time.perf_counter()
        parts = [measure(backend, paths)]
    else:
        chunks = [paths[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            pool.submit(measure, backend, paths[:1]).result()  # start-up and model load, untimed
            start = time.perf_counter()
            parts = list(pool.map(measure, [backend] * workers, chunks))
    wall = time.perf_counter() - start
    images = sum(p["images"] for p in parts)
    faces = sum(p["faces"] for p in parts)
    detect = sum(p["detect_s"] for p in parts)
    embed = sum(p["embed_s"] for p in parts)
    return {
        "images": images,
        "faces": faces,
        "wall_s": round(wall, 2),
        "images_per_s": round(images / wall, 2),
        "detect_ms_per_image": round(1000 * detect / images, 1),
        "embed_ms_per_face": round(1000 * embed / max(faces, 1), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/face_analysis_speed.json")
    parser.add_argument("--lfw", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["dlib", "onnx"])
    args = parser.parse_args()

    manifest = json.loads((SHARED / "data/MANIFEST.json").read_text())
    groups = [str(SHARED / "data" / p) for p in manifest["multi_person"]]
    lfw_photos = sorted(
        p for ps in load_manifest_sets(SHARED / "data/MANIFEST.json")["lfw"].values() for p in ps
    )
    lfw = random.Random(0).sample(lfw_photos, args.lfw)
    workers_all = os.cpu_count() or 1
    report = {
        "machine": {"cpus": workers_all, "processor": platform.processor() or platform.machine()},
        "runs": [],
    }
    print(
        f"{'backend':7} {'photos':14} {'procs':>5} {'images/s':>9} "
        f"{'detect ms/img':>14} {'embed ms/face':>14} {'faces':>6}"
    )
    for backend in args.backends:
        for label, paths in (("groups", groups), (f"lfw-{args.lfw}", lfw)):
            for workers in sorted({1, workers_all}):
                row = {
                    "backend": backend,
                    "photos": label,
                    "processes": workers,
                    **run(backend, paths, workers),
                }
                report["runs"].append(row)
                print(
                    f"{backend:7} {label:14} {workers:5d} {row['images_per_s']:9.2f} "
                    f"{row['detect_ms_per_image']:14.1f} {row['embed_ms_per_face']:14.1f} "
                    f"{row['faces']:6d}",
                    flush=True,
                )
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
