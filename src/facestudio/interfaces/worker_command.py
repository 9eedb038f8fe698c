"""`facestudio worker`: one model on one device, running the jobs that `facestudio serve
--redis` queues. Start one per GPU, on as many machines as you like (docs/serving.md)."""

from __future__ import annotations

import argparse

from facestudio.app.config import REDIS_URL_ENV, WorkerConfig, redis_url_from
from facestudio.errors import FaceStudioError

DEFAULTS = WorkerConfig(redis_url="redis://localhost:6379/0")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run jobs queued in Redis by `facestudio serve --redis` (needs: pip install "
        "'facestudio[app,cluster]')",
        description=(
            "Load one model onto one device and run the jobs queued in Redis, one at a time. "
            "Run one per GPU (--device cuda:N) and on any number of machines. SIGINT or "
            "SIGTERM stops it after the running job; a worker that dies mid-job has its job "
            "taken over by another after the visibility timeout."
        ),
    )
    parser.add_argument(
        "--redis",
        nargs="?",
        const="",
        metavar="URL",
        help="the Redis that the servers queue into, e.g. redis://host:6379/0; without a URL "
        f"(or without --redis) ${REDIS_URL_ENV}, where one with a password belongs",
    )
    parser.add_argument(
        "--model",
        metavar="DIR_OR_HUB_ID",
        help="FaceStudio pipeline folder, hub id or 'bundled' (default: the bundled model); "
        "the same model as the servers'",
    )
    parser.add_argument("--device", default=DEFAULTS.device, help="torch device, e.g. cuda:0")
    parser.add_argument("--name", help="this worker's name in /v1/workers (default: host-pid)")
    parser.add_argument(
        "--visibility",
        type=float,
        default=DEFAULTS.visibility_s,
        metavar="SECONDS",
        help="a job whose worker has been silent this long is taken over (default %(default)s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=DEFAULTS.heartbeat_s,
        metavar="SECONDS",
        help="how often the worker renews its claim and announces itself (default %(default)s)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULTS.max_attempts,
        help="a job whose worker stopped this many times fails (default %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    url = redis_url_from(args.redis or "")
    config = WorkerConfig(
        redis_url=url,
        model=args.model,
        device=args.device,
        name=args.name,
        visibility_s=args.visibility,
        heartbeat_s=args.heartbeat,
        max_attempts=args.max_attempts,
    )
    config.check()  # before the imports and the model load
    try:
        import redis  # noqa: F401

        from facestudio.app.worker import run_worker
    except ImportError as exc:
        extra = "cluster" if exc.name == "redis" else "app"
        raise FaceStudioError(
            f"the worker needs the {extra} extra ({exc.name} is missing): "
            f"pip install 'facestudio[{extra}]'"
        ) from None
    run_worker(config)
    return 0
