"""`prepare` in one process against `prepare --ray` on a local two-worker Ray cluster.

Both runs prepare the same LFW photos from ../shared/data (a random sample, listed in a
manifest in a temporary folder) with the dlib backend and no cache, so every face is computed;
the shards, reports and index of the two runs must be byte-identical. Prints a table and
writes JSON.

    python benchmarks/prepare_ray.py [--photos 200] [--out benchmarks/results/prepare_ray.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from facestudio.data.distribute import RayConfig, prepare_on_ray
from facestudio.data.prepare import PrepareConfig, prepare, write_index
from facestudio.evaluation.verification import load_manifest_sets
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ANALYSIS = FaceAnalyzerConfig(backend="dlib", cache_dir=None)


def lfw_manifest(folder: Path, count: int) -> Path:
    """A manifest of `count` LFW photos chosen with a fixed seed."""
    sets = load_manifest_sets(SHARED / "data/MANIFEST.json")
    photos = sorted(str(p) for paths in sets["lfw"].values() for p in paths)
    manifest = folder / "photos.txt"
    manifest.write_text("\n".join(random.Random(0).sample(photos, count)) + "\n")
    return manifest


def timed(run) -> tuple[dict, float]:
    start = time.perf_counter()
    counts = run()
    return counts, time.perf_counter() - start


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--out", default="benchmarks/results/prepare_ray.json")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    config = PrepareConfig(resolution=128, shard_size=args.shard_size)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sources = [str(lfw_manifest(folder, args.photos))]
        plain, ray_out = folder / "plain", folder / "ray"
        analyzer = FaceAnalyzer(ANALYSIS)  # models loaded before the clock starts
        counts, plain_s = timed(lambda: prepare(sources, plain, analyzer, config, progress=False))
        start = time.perf_counter()
        ray.init(
            address="local", num_cpus=args.workers, include_dashboard=False, logging_level="warning"
        )
        cluster_s = time.perf_counter() - start
        try:
            _, ray_s = timed(
                lambda: prepare_on_ray(sources, ray_out, ANALYSIS, config, RayConfig(), False)
            )
        finally:
            ray.shutdown()
        index = write_index(plain, config, analyzer)
        write_index(ray_out, config, analyzer)
        identical = contents(plain) == contents(ray_out)
        shards = len(index["shards"])
    photos = counts["images_processed"]
    runs = [
        {"mode": "one process", "workers": 1, "wall_s": round(plain_s, 2)},
        {"mode": "ray, local cluster", "workers": args.workers, "wall_s": round(ray_s, 2)},
    ]
    for run in runs:
        run["images_per_s"] = round(photos / run["wall_s"], 2)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
        "photos": photos,
        "kept": index["kept"],
        "shards": shards,
        "backend": "dlib, no cache",
        "resolution": config.resolution,
        "ray_cluster_start_s": round(cluster_s, 2),
        "byte_identical": identical,
        "runs": runs,
    }
    print(f"{photos} LFW photos, {shards} shards, dlib, no cache; byte-identical: {identical}")
    print(f"{'mode':20} {'workers':>7} {'wall s':>8} {'images/s':>9}")
    for run in runs:
        print(
            f"{run['mode']:20} {run['workers']:7d} {run['wall_s']:8.2f} {run['images_per_s']:9.2f}"
        )
    print(f"(starting the Ray cluster: {cluster_s:.1f} s, not included)")
    write_report(report, args.out)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
