"""The `facestudio` command: one subcommand per job, one-line errors, exit code 2 on bad input."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from facestudio import __version__
from facestudio.errors import FaceStudioError
from facestudio.files import environment_failure
from facestudio.interfaces import (
    cache_command,
    eval_command,
    faces_command,
    generate_command,
    inspect_command,
    prepare_command,
    serve_command,
    train_command,
    worker_command,
)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # as a shell reports a command killed by SIGPIPE

_COMMANDS = (
    generate_command,
    faces_command,
    prepare_command,
    train_command,
    eval_command,
    cache_command,
    serve_command,
    worker_command,
    inspect_command,
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
        return _fail(str(exc))
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # `facestudio ... | head`: the reader has left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        # Full, read-only or failing storage and permissions are the machine's state, never a
        # bug: one line. Any other OSError keeps its traceback.
        message = environment_failure(exc)
        if message is None:
            raise
        return _fail(message)
    except KeyboardInterrupt:
        print("facestudio: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    """The one line of an error a user can fix; newlines are folded so it stays one line."""
    print(f"facestudio: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
