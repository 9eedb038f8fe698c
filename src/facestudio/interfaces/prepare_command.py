"""`facestudio prepare`: photos -> reconstruction training samples (WebDataset shards + index).

Runs in parallel under `accelerate launch`: each process prepares its share of the shards and
the main process writes the index when all are done.
"""

from __future__ import annotations

import argparse
import os
import time

from facestudio.interfaces.face_options import add_face_backend_arguments, analyzer_config_from_args


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn photos into training samples (face-centred image, masked style input, identity)",
        description=(
            "Prepare reconstruction samples from image folders, WebDataset .tar shards or "
            "manifests (.txt/.json/.jsonl lists of paths). Photos without a usable face are "
            "skipped and counted by reason. Re-running resumes: finished shards are kept."
        ),
    )
    parser.add_argument("sources", nargs="+", metavar="SRC", help="folder, .tar shard or manifest")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder for shards and index.json: new, empty, or one prepare made",
    )
    parser.add_argument(
        "--resolution", type=int, default=256, help="training image side (default 256)"
    )
    parser.add_argument(
        "--face-fraction", type=float, default=0.5, help="face width relative to the image"
    )
    parser.add_argument(
        "--min-face", type=int, default=40, help="skip faces narrower than this (pixels)"
    )
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard")
    parser.add_argument(
        "--keep-faceless", action="store_true", help="keep photos without a face (zero identity)"
    )
    add_face_backend_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facestudio.configuration import check_dataclass
    from facestudio.data.prepare import PrepareConfig, check_prepare_folder, prepare, write_index
    from facestudio.data.sources import list_items
    from facestudio.faces.analyzer import FaceAnalyzer

    # Everything a user gave is checked before the face models load or anything is written.
    config = check_dataclass(
        PrepareConfig(
            resolution=args.resolution,
            face_fraction=args.face_fraction,
            min_face=args.min_face,
            shard_size=args.shard_size,
            keep_faceless=args.keep_faceless,
        ),
        "the command line",
    )
    check_prepare_folder(args.out, args.sources)  # prepare's own folder, not a source
    list_items(args.sources)
    analyzer = FaceAnalyzer(analyzer_config_from_args(args))
    state = _distributed_state()
    start = time.perf_counter()
    counts = prepare(
        args.sources,
        args.out,
        analyzer,
        config,
        process_index=state.process_index if state else 0,
        num_processes=state.num_processes if state else 1,
    )
    if state:
        state.wait_for_everyone()
    if state is None or state.is_main_process:
        index = write_index(args.out, config, analyzer)
        skipped = ", ".join(f"{reason} {count}" for reason, count in index["skipped"].items())
        print(
            f"prepared {args.out}: kept {index['kept']}, skipped {sum(index['skipped'].values())} "
            f"({skipped}); {counts['shards_prepared']} shard(s) made, {counts['shards_done_before']} "
            f"already done; {counts['images_processed']} image(s) processed in {time.perf_counter() - start:.1f} s"
        )
    return 0


def _distributed_state():
    """accelerate's process state when launched with several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"))
