"""`facestudio prepare`: photos -> reconstruction training samples (WebDataset shards + index).

Runs in parallel under `accelerate launch` (each process prepares its share of the shards and
the main process writes the index when all are done) or, with `--ray`, on a Ray cluster's
workers (`facestudio.data.distribute`); both write the same shards as one process.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING

from facestudio.errors import FaceStudioError
from facestudio.interfaces.face_options import add_face_backend_arguments, analyzer_config_from_args

if TYPE_CHECKING:
    from facestudio.data.distribute import RayConfig


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
    cluster = parser.add_argument_group("on a Ray cluster (needs facestudio[cluster])")
    cluster.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="analyse the photos on a Ray cluster: auto (the cluster `ray start` made this "
        "machine part of), ray://HOST:10001, or local (a new one on this machine); the shards "
        "are the same as without it",
    )
    cluster.add_argument(
        "--ray-gpus",
        type=float,
        default=0.0,
        metavar="N",
        help="GPUs each Ray task reserves (e.g. 0.25 with --backend torch); default 0: CPUs only",
    )
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
    cluster = _ray_config(args)
    check_prepare_folder(args.out, args.sources)  # prepare's own folder, not a source
    list_items(args.sources)
    analyzer = FaceAnalyzer(analyzer_config_from_args(args))
    state = None if cluster else _distributed_state()
    start = time.perf_counter()
    if cluster:
        from facestudio.data.distribute import prepare_on_ray

        counts = prepare_on_ray(args.sources, args.out, analyzer.config, config, cluster)
    else:
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


def _ray_config(args: argparse.Namespace) -> RayConfig | None:
    """The Ray settings of `--ray`, checked (Ray installed, not also under accelerate), or None."""
    if args.ray is None:
        if args.ray_gpus:
            raise FaceStudioError("--ray-gpus needs --ray ADDRESS; add it or drop --ray-gpus")
        return None
    from facestudio.configuration import check_dataclass
    from facestudio.data.distribute import RayConfig, import_ray

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise FaceStudioError(
            "--ray spreads the work itself; run it as one process, not under accelerate launch"
        )
    cluster = check_dataclass(
        RayConfig(address=args.ray, gpus_per_task=args.ray_gpus), "the command line"
    )
    import_ray()
    return cluster


def _distributed_state():
    """accelerate's process state when launched with several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"))
