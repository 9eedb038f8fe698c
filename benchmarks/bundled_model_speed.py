"""Speed of the bundled small model on this machine: seconds per image with the model loaded
(warm), with and without embedding the face photo, and the whole `facestudio generate` call
from a cold process (import, load, face analysis, generation, PNG).

Prints a table and writes JSON. Targets on the 2-core CPU: ≤ 3 s per image warm, ≤ 15 s cold.

    python benchmarks/bundled_model_speed.py [--model DIR] [--out benchmarks/results/bundled_model_speed.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from facestudio.interfaces.example_photo import example_photo
from facestudio.interfaces.generate_command import default_model
from facestudio.pipeline import FaceStudioPipeline
from report import write_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: the bundled one)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/bundled_model_speed.json")
    args = parser.parse_args()
    model = args.model or default_model()

    pipeline = FaceStudioPipeline.from_pretrained(model)
    pipeline.set_progress_bar_config(disable=True)
    photo = example_photo()
    embedding = pipeline.face_analyzer.identity(photo).embedding
    warm_up = pipeline(identities=[embedding], num_inference_steps=args.steps, seed=0)

    def timed(**kwargs) -> float:
        times = []
        for seed in range(args.repeats):
            start = time.perf_counter()
            pipeline(num_inference_steps=args.steps, seed=seed, **kwargs)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    report = {
        "model": str(model),
        "steps": args.steps,
        "image_size": list(warm_up.images[0].size),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "warm_s_per_image_embedding_given": round(timed(identities=[embedding]), 3),
        "warm_s_per_image_from_photo": round(timed(identities=[photo]), 3),
    }

    cold = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(3):
            command = [sys.executable, "-m", "facestudio.interfaces.cli", "generate", "--example"]
            command += ["-o", str(Path(folder) / f"{i}.png"), "--seed", str(i)]
            if args.model:
                command += ["--model", args.model]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            cold.append(time.perf_counter() - start)
    report["cold_cli_s"] = round(statistics.median(cold), 3)
    report["cold_cli_runs_s"] = [round(t, 3) for t in cold]

    print(f"{'measure':36} {'seconds':>8}")
    for key in ("warm_s_per_image_embedding_given", "warm_s_per_image_from_photo", "cold_cli_s"):
        print(f"{key:36} {report[key]:8.3f}")
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
