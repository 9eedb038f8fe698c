"""`facestudio faces`: list faces, compare two photos, or check several photos of one person."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from facestudio.errors import FaceStudioError
from facestudio.faces.analyzer import FaceAnalyzer
from facestudio.faces.drawing import draw_faces
from facestudio.fields import speak
from facestudio.images import check_image_file, load_image
from facestudio.interfaces.example_photo import EXAMPLE_NAME, example_photo
from facestudio.interfaces.face_options import add_face_backend_arguments, analyzer_from_args
from facestudio.outputs import check_output_paths, encode_png, write_outputs_atomic

OPTION_NAMES = {"face_index": "--face-index N"}
"""How this command's warnings name the inputs shared messages refer to (`facestudio.fields`)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "faces",
        help="detect faces, compare two photos, or check several photos of one person",
        description=(
            "Detect faces (box, score, 5 landmarks), largest first. With --compare, the "
            "similarity of two photos' faces and a same/different verdict; with --identity, "
            "several photos of one person combined into one identity, with a consistency check."
        ),
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="photos to analyse")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--compare", nargs=2, metavar=("A", "B"), help="compare the faces of two photos"
    )
    mode.add_argument("--identity", nargs="+", metavar="PHOTO", help="several photos of one person")
    mode.add_argument(
        "--example", action="store_true", help=f"analyse the {EXAMPLE_NAME} instead of a file"
    )
    parser.add_argument(
        "--face-index",
        type=int,
        metavar="N",
        help="which face of a photo to use for --compare/--identity (0 = largest, the default)",
    )
    parser.add_argument(
        "--json", metavar="OUT", help="write results as JSON to OUT ('-' for stdout)"
    )
    parser.add_argument(
        "--draw", metavar="OUT.png", help="write the photo with the faces drawn on it"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_face_backend_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.compare or args.identity:
        if args.images:
            raise FaceStudioError(
                "give photos either as IMAGE... or to --compare/--identity, not both"
            )
        if args.draw:
            raise FaceStudioError(
                "--draw works when listing faces; drop it with --compare/--identity"
            )
    elif not args.images and not args.example:
        raise FaceStudioError("give one or more IMAGE files, or --example to try the sample photo")
    elif args.example and args.images:
        raise FaceStudioError("give IMAGE files or --example, not both")
    sources = args.images or []
    if args.draw and len(sources) > 1:
        raise FaceStudioError("--draw takes one image; run once per image to draw several")
    named = {"json": args.json if args.json != "-" else None, "draw": args.draw}
    named = {key: value for key, value in named.items() if value}
    photos = sources or args.compare or args.identity or []
    checked = check_output_paths(named.values(), args.force, inputs=photos)
    outputs = dict(zip(named, checked, strict=True))

    for photo in photos:
        check_image_file(photo)  # a missing or unreadable photo fails before the models load
    analyzer = analyzer_from_args(args)
    if args.compare:
        result, lines = _compare(analyzer, args.compare, args.face_index)
        images = None
    elif args.identity:
        result, lines = _identity(analyzer, args.identity, args.face_index)
        images = None
    else:
        result, lines, images = _list_faces(analyzer, sources, args.example, bool(args.draw))

    for warning in result.get("warnings", []):
        print(f"facestudio: warning: {speak(warning, OPTION_NAMES)}", file=sys.stderr)
    text = json.dumps(result, indent=2)
    if args.json == "-":
        print(text)
    else:
        print("\n".join(lines))
    results = []
    if "json" in outputs:
        results.append((outputs["json"], (text + "\n").encode()))
    if "draw" in outputs:
        image, faces = images
        results.append((outputs["draw"], encode_png(draw_faces(image, faces))))
    write_outputs_atomic(results)  # all or none
    return 0


def _list_faces(
    analyzer: FaceAnalyzer, sources: list[str], example: bool, keep_pixels: bool
) -> tuple[dict, list[str], tuple | None]:
    if example:
        named = [(EXAMPLE_NAME, example_photo())]
    else:
        named = [(source, source) for source in sources]
    results, lines, warnings = [], [], []
    pixels = None
    progress = tqdm(
        named, desc="faces", unit="image", disable=len(named) < 2 or None, file=sys.stderr
    )
    for name, source in progress:
        found = analyzer.analyze(source)
        entry = found.to_dict()
        entry["image"] = name
        results.append(entry)
        lines.append(f"{name}: {len(found.faces)} face(s) in {found.width}×{found.height}")
        for i, face in enumerate(found.faces):
            x0, y0, x1, y1 = face.box
            lines.append(
                f"  face {i}: box {x0:.0f},{y0:.0f} to {x1:.0f},{y1:.0f}  score {face.score:.2f}"
            )
        if not found.faces:
            warnings.append(f"no face found in '{name}'")
        if keep_pixels:
            image = (
                source
                if isinstance(source, np.ndarray)
                else load_image(source, analyzer.config.image)
            )
            pixels = (image, found.faces)
    result = {"backend": analyzer.backend.name, "images": results, "warnings": warnings}
    return result, lines, pixels


def _compare(
    analyzer: FaceAnalyzer, pair: list[str], face_index: int | None
) -> tuple[dict, list[str]]:
    comparison, first, second = analyzer.compare(pair[0], pair[1], face_index)
    verdict = "same person" if comparison.same_person else "different people"
    result = {
        **comparison.to_dict(),
        "images": [
            {
                "image": shot.source,
                "face_index": shot.face_index,
                "box": [round(v, 2) for v in shot.face.box],
            }
            for shot in (first, second)
        ],
        "warnings": first.warnings + second.warnings,
    }
    line = (
        f"similarity {comparison.similarity:.3f}: {verdict} "
        f"(threshold {comparison.threshold:.2f}, {comparison.backend} backend)"
    )
    return result, [line]


def _identity(
    analyzer: FaceAnalyzer, photos: list[str], face_index: int | None
) -> tuple[dict, list[str]]:
    identity = analyzer.multi_shot(photos, face_index)
    result = {
        "backend": analyzer.backend.name,
        "threshold": analyzer.threshold,
        **identity.to_dict(),
    }
    lines = [f"{len(photos)} photo(s), consistency {identity.consistency:.3f}"]
    lines += [
        f"  {shot.source}: face {shot.face_index}, similarity to the others {similarity:.3f}"
        for shot, similarity in zip(identity.shots, identity.similarity_to_others, strict=True)
    ]
    return result, lines
