"""Score a run's checkpoints on the *validation* people, to choose which one to ship.

    python recipes/bundled_model_v2/select_checkpoint.py --run RUN/diffusion \
        --validation RUN/split/validation.json --out RUN/selection [--every 1000]

Each checkpoint not scored yet (a multiple of `--every`) is exported with its EMA weights,
generates one image per validation person (their first photo conditions, seed 0, no style
input) and is scored against their other photos by dlib's recogniser: the project's own, which
the model is conditioned on, so its numbers run high; they only rank checkpoints. The
independent recogniser in ../shared/models judges the held-out people once, for the model card,
and never chooses a checkpoint. One JSON line per checkpoint goes to `--out/scores.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from facestudio.evaluation.benchmark import load_definition, run_benchmark
from facestudio.evaluation.face_scoring import FaceScorer
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.run import RunFolder, export_checkpoint


def usable(definition, analyzer):
    """The definition without people whose conditioning photo dlib finds no face in (LFW has
    a few, and the model cannot be conditioned on them); the same people for every checkpoint,
    since detection does not depend on the model."""
    kept = [i for i in definition.identities if analyzer.analyze(i.condition[0]).faces]
    dropped = [i.name for i in definition.identities if i not in kept]
    if dropped:
        print(f"validation: {len(dropped)} people without a face in their first photo: {dropped}")
    definition.identities = kept
    return definition


def score(checkpoint: Path, validation: Path) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        exported = export_checkpoint(checkpoint, Path(folder) / "pipeline")
        pipeline = FaceStudioPipeline.from_pretrained(exported)
        pipeline.set_progress_bar_config(disable=True)
        scorer = FaceScorer(
            pipeline.face_analyzer,
            pipeline.face_analyzer.backend.recognizer_id(),
            allow_biased=True,
        )
        definition = usable(load_definition(validation), pipeline.face_analyzer)
        definition.seeds = [0]
        summary = run_benchmark(
            pipeline, definition, scorer, Path(folder) / "eval", ("identity", "impostor")
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--validation", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--every", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scores = args.out / "scores.jsonl"
    done = (
        {json.loads(line)["step"] for line in scores.read_text().splitlines()}
        if scores.is_file()
        else set()
    )
    for checkpoint in RunFolder(args.run).checkpoints():
        step = int(checkpoint.name.split("-")[-1])
        if step in done or step % args.every:
            continue
        summary = score(checkpoint, args.validation)
        row = {"step": step, "scorer": "dlib (conditioning; ranks only)", **summary["ablations"]}
        with open(scores, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row))


if __name__ == "__main__":
    main()
