"""`facestudio cache`: where the face cache lives, and clearing it."""

from __future__ import annotations

import argparse
import os

from facestudio.faces.cache import (
    DATABASE,
    FaceCache,
    check_cache_folder,
    damaged_copies,
    default_cache_dir,
    remove_damaged_copies,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show or clear the cache of face detections and embeddings",
        description=(
            "The cache keeps detections and identity embeddings (never photos) by the photo's "
            "content hash, so re-runs do not recompute them. Its folder is $FACESTUDIO_CACHE, "
            "else $XDG_CACHE_HOME/facestudio, else ~/.cache/facestudio. A damaged cache is set "
            "aside and rebuilt on its own; --clear also deletes the copies set aside. A "
            f"{DATABASE} that FaceStudio did not make is never changed or deleted."
        ),
    )
    parser.add_argument("--clear", action="store_true", help="delete every cached entry")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    folder = default_cache_dir()
    check_cache_folder(folder)
    path = folder / DATABASE
    aside = damaged_copies(folder)
    if not os.path.lexists(path) and not (args.clear and aside):
        print(f"cache: {path} (empty)")
        return 0
    # A damaged database of ours is set aside and rebuilt here; one that is not ours is refused
    # (one line) before anything is changed or deleted.
    cache = FaceCache(folder, strict=True)
    try:
        if args.clear:
            removed = cache.clear()
            copies, left = remove_damaged_copies(folder)
            extra = f" and {copies} damaged file(s) set aside" if copies else ""
            kept = (
                f"; left {len(left)} file(s) named like set-aside copies that are not "
                f"FaceStudio's: {', '.join(p.name for p in left)}"
                if left
                else ""
            )
            print(f"cache: removed {removed} entries{extra} from {folder}{kept}")
        else:
            size = path.stat().st_size if path.exists() else 0
            note = f"; {len(aside)} damaged file(s) set aside" if aside else ""
            print(f"cache: {path} ({size / 1e6:.1f} MB{note})")
    finally:
        cache.close()
    return 0
