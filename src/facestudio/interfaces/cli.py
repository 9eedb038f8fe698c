"""The `facestudio` command: one subcommand per job, one-line errors, exit code 2 on bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from facestudio import __version__
from facestudio.errors import FaceStudioError
from facestudio.interfaces import (
    cache_command,
    eval_command,
    faces_command,
    generate_command,
    prepare_command,
    train_command,
)

EXIT_OK = 0
EXIT_USAGE = 2

_COMMANDS = (
    generate_command,
    faces_command,
    prepare_command,
    train_command,
    eval_command,
    cache_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facestudio",
        description="Identity-preserving image generation and the face analysis behind it.",
    )
    parser.add_argument("--version", action="version", version=f"facestudio {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress details to stderr"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="facestudio: %(levelname)s: %(message)s",
    )
    try:
        return args.run(args)
    except FaceStudioError as exc:
        print(f"facestudio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("facestudio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
