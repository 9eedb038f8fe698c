"""`facestudio cache`: where the face cache lives, and clearing it."""

from __future__ import annotations

import argparse

from facestudio.faces.cache import FaceCache, default_cache_dir


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show or clear the cache of face detections and embeddings",
        description=(
            "The cache keeps detections and identity embeddings (never photos) by the photo's "
            "content hash, so re-runs do not recompute them. Its folder is $FACESTUDIO_CACHE, "
            "else $XDG_CACHE_HOME/facestudio, else ~/.cache/facestudio."
        ),
    )
    parser.add_argument("--clear", action="store_true", help="delete every cached entry")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    folder = default_cache_dir()
    path = folder / "faces.sqlite"
    if not path.exists():
        print(f"cache: {path} (empty)")
        return 0
    cache = FaceCache(folder)
    try:
        if args.clear:
            print(f"cache: removed {cache.clear()} entries from {path}")
        else:
            print(f"cache: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    finally:
        cache.close()
    return 0
