"""Data preparation and training speed on this machine.

Prints a table and writes JSON: `prepare` images/s (cold: no cache; warm: embeddings cached),
and training samples/s and peak memory for a tiny and a medium model on CPU; with --gpu the
SD-1.5-shaped model at 512×512 (fp16 mixed precision) instead.

    python benchmarks/training_speed.py [--out benchmarks/results/training_speed.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facestudio.evaluation.verification import load_manifest_sets
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

MODELS = {
    "tiny": {"resolution": 64, "sizes": {}, "batch_size": 16},
    "medium": {
        "resolution": 128,
        "sizes": {
            "unet_channels": [64, 128, 256],
            "cross_attention_dim": 256,
            "embedding_dim": 64,
            "with_text": False,
        },
        "batch_size": 16,
    },
    "sd15": {"resolution": 512, "preset": "sd15", "sizes": {"with_text": False}, "batch_size": 4},
}


def run(command: list[str], env_cache: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "FACESTUDIO_CACHE": env_cache},
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/training_speed.json")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args()

    cli = [sys.executable, "-m", "facestudio.interfaces.cli"]
    lfw = sorted(
        p for ps in load_manifest_sets(SHARED / "data/MANIFEST.json")["lfw"].values() for p in ps
    )
    photos = random.Random(0).sample(lfw, args.photos)
    report = {"photos": args.photos, "runs": []}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        manifest = work / "photos.txt"
        manifest.write_text("\n".join(photos))
        cache = str(work / "cache")
        rows = []
        for label, out in (("prepare, cold cache", "p1"), ("prepare, warm cache", "p2")):
            seconds = run(
                [*cli, "prepare", str(manifest), "--out", str(work / out), "--resolution", "128"],
                cache,
            )
            rows.append((label, f"{args.photos / seconds:.2f} images/s", ""))
            report[label.replace(", ", "_").replace(" ", "_")] = round(args.photos / seconds, 2)
        names = ["sd15"] if args.gpu else ["tiny", "medium"]
        for name in names:
            model = MODELS[name]
            run_dir = work / f"run-{name}"
            config = {
                "output_dir": str(run_dir),
                "model": {"preset": model.get("preset", "tiny"), "sizes": model["sizes"]},
                "data": {"path": str(work / "p1"), "resolution": model["resolution"]},
                "train": {
                    "batch_size": model["batch_size"],
                    "max_steps": args.steps,
                    "mixed_precision": "fp16" if args.gpu else "no",
                    "allow_untrained_frozen": True,  # speed only: random frozen parts are fine
                },
                "checkpoints": {"every_steps": 10**6},
                "logging": {"every_steps": max(1, args.steps // 2)},
            }
            path = work / f"{name}.yaml"
            path.write_text(json.dumps(config))  # JSON is valid YAML
            run([*cli, "train", str(path)] + ([] if args.gpu else ["--cpu"]), cache)
            last = list(csv.DictReader((run_dir / "log.csv").open()))[-1]
            entry = {
                "model": name,
                "resolution": model["resolution"],
                "batch_size": model["batch_size"],
                "samples_per_s": float(last["samples_per_s"]),
                "peak_memory_mb": float(last["peak_memory_mb"]),
            }
            report["runs"].append(entry)
            rows.append(
                (
                    f"train {name} {model['resolution']}px, batch {model['batch_size']}",
                    f"{entry['samples_per_s']:.1f} samples/s",
                    f"{entry['peak_memory_mb']:.0f} MB peak",
                )
            )
    for row in rows:
        print(f"{row[0]:40} {row[1]:>18} {row[2]:>14}")
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
