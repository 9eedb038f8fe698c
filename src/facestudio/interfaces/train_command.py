"""`facestudio train CONFIG` and `facestudio export CHECKPOINT -o DIR`."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a FaceStudio model by reconstruction (resumes from the latest checkpoint)",
        description=(
            "Train by reconstruction on data made by 'facestudio prepare'. Run it directly for one "
            "process, or under 'accelerate launch' for several GPUs. An interrupted run resumes "
            "from the latest checkpoint in output_dir. See docs/training.md for the config keys."
        ),
    )
    parser.add_argument("config", metavar="CONFIG", help="training configuration (.toml or .yaml)")
    parser.add_argument(
        "--cpu", action="store_true", help="train on the CPU even if a GPU is present"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start output_dir's run over (its checkpoints, logs and starting model are deleted)",
    )
    parser.set_defaults(run=run_train)

    export = subparsers.add_parser(
        "export",
        help="turn a training checkpoint into a pipeline folder for 'facestudio generate'",
    )
    export.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a checkpoint-NNNNNNNN folder of a run"
    )
    export.add_argument("-o", "--output", required=True, metavar="DIR", help="new pipeline folder")
    export.add_argument(
        "--no-ema", action="store_true", help="export the raw weights even if EMA weights exist"
    )
    export.set_defaults(run=run_export)


def run_train(args: argparse.Namespace) -> int:
    from facestudio.training.config import load_config
    from facestudio.training.loop import train

    config = load_config(args.config)
    result = train(config, cpu=True if args.cpu else None, restart=args.restart)
    print(
        f"trained to step {result.step} in {result.seconds:.0f} s; {result.losses.describe()}; "
        f"latest checkpoint {result.checkpoint}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from facestudio.training.run import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.output, use_ema=not args.no_ema)
    print(f"wrote pipeline {out}")
    return 0
