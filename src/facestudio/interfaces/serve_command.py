"""`facestudio serve`: the web page and the HTTP API on one server, with one model loaded."""

from __future__ import annotations

import argparse

from facestudio.app.config import ServeConfig, redis_url_from, token_from_environment
from facestudio.errors import FaceStudioError

DEFAULTS = ServeConfig()


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="web page and HTTP API for generation (needs: pip install 'facestudio[app]')",
        description=(
            "Serve the web page (/) and the HTTP API (/v1, docs at /docs) with one model in "
            "memory. Binding to anything but loopback needs a token in $FACESTUDIO_TOKEN. "
            "Photos sent to the API stay in memory for their job only; the page's uploads wait "
            "in a private temporary folder, deleted after 10 minutes and when the server stops."
        ),
    )
    parser.add_argument(
        "--model",
        metavar="DIR_OR_HUB_ID",
        help="FaceStudio pipeline folder, hub id or 'bundled' (default: the bundled model)",
    )
    parser.add_argument(
        "--host", default=DEFAULTS.host, help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULTS.port, help="port (default %(default)s)"
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=DEFAULTS.queue_size,
        help="jobs that may wait before new ones get 429 (default %(default)s)",
    )
    parser.add_argument(
        "--retention",
        type=float,
        default=DEFAULTS.retention_s,
        metavar="SECONDS",
        help="how long results stay downloadable (default %(default)s)",
    )
    parser.add_argument(
        "--max-job-seconds",
        type=float,
        default=DEFAULTS.max_job_s,
        metavar="SECONDS",
        help="longest a job may hold the worker; costlier requests are refused (default "
        "%(default)s)",
    )
    parser.add_argument("--device", default=DEFAULTS.device, help="torch device, e.g. cpu or cuda")
    parser.add_argument(
        "--redis",
        nargs="?",
        const="",
        metavar="URL",
        help="queue jobs in Redis for `facestudio worker` processes instead of running them "
        "here (no model is loaded; only --model's configs are read); --redis alone reads the "
        "URL from $FACESTUDIO_REDIS_URL, where one with a password belongs (needs: pip "
        "install 'facestudio[cluster]')",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = ServeConfig(
        model=args.model,
        host=args.host,
        port=args.port,
        token=token_from_environment(),
        queue_size=args.queue_size,
        retention_s=args.retention,
        device=args.device,
        max_job_s=args.max_job_seconds,
        redis_url=redis_url_from(args.redis) if args.redis is not None else None,
    )
    config.check()  # before the imports and the model load: a refusal costs milliseconds
    try:
        from facestudio.app.server import serve

        if config.redis_url is not None:
            import redis  # noqa: F401
    except ImportError as exc:
        extra = "cluster" if exc.name == "redis" else "app"
        raise FaceStudioError(
            f"the server needs the {extra} extra ({exc.name} is missing): "
            f"pip install 'facestudio[{extra}]'"
        ) from None
    serve(config)
    return 0
