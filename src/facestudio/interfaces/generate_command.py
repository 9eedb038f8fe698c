"""`facestudio generate`: images of one or more people from their photos, a style image, text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facestudio import __version__
from facestudio.errors import FaceStudioError
from facestudio.images import load_image
from facestudio.interfaces.example_photo import EXAMPLE_NAME, example_photo
from facestudio.outputs import check_output_path, encode_png, write_bytes_atomic


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate images that keep the identity of the people in your photos",
        description=(
            "Generate images of one or more people. --face gives photos of the first person "
            "(several = multi-shot); each --person adds another person (comma-separated photos "
            "for several shots). PNGs carry their settings and say they are generated."
        ),
    )
    parser.add_argument(
        "--face",
        action="append",
        default=[],
        metavar="PHOTO",
        help="photo of person 1 (repeat for more shots)",
    )
    parser.add_argument(
        "--person", action="append", default=[], metavar="PHOTO[,PHOTO]", help="another person"
    )
    parser.add_argument("--example", action="store_true", help=f"person 1 is the {EXAMPLE_NAME}")
    parser.add_argument("--style", metavar="IMAGE", help="style / composition image")
    parser.add_argument("--image", metavar="IMAGE", help="image-to-image: keep this image's layout")
    parser.add_argument(
        "--strength", type=float, default=0.8, help="image-to-image noise strength (0, 1]"
    )
    parser.add_argument("--prompt", help="text (models with a text prior only)")
    parser.add_argument(
        "--regions",
        default="auto",
        metavar="auto|BOXES",
        help="where each person goes: 'auto', or 'x0,y0,x1,y1;x0,y0,x1,y1' in output pixels",
    )
    parser.add_argument(
        "--mix",
        nargs="+",
        type=float,
        metavar="W",
        help="blend all people into one with these weights",
    )
    parser.add_argument("--alpha", type=float, help="image-branch weight against text (0..1)")
    parser.add_argument(
        "--face-index", type=int, metavar="N", help="which face of each photo (0 = largest)"
    )
    parser.add_argument(
        "--model",
        metavar="DIR_OR_HUB_ID",
        help="FaceStudio pipeline folder or hub id (default: the small model in the package)",
    )
    parser.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    parser.add_argument(
        "--style-scale", type=float, default=5.0, help="guidance scale for style and text"
    )
    parser.add_argument("--face-scale", type=float, default=5.0, help="guidance scale for identity")
    parser.add_argument("--seed", type=int, help="seed of the first image (image i uses seed + i)")
    parser.add_argument("--num", type=int, default=1, help="number of images")
    parser.add_argument("--height", type=int, help="output height in pixels (default: the model's)")
    parser.add_argument("--width", type=int, help="output width in pixels (default: the model's)")
    parser.add_argument(
        "--background",
        choices=("random", "all"),
        default="random",
        help="what areas outside every person see (several people)",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--fp16", action="store_true", help="half precision (GPU only; opt-in)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output PNG")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.set_defaults(run=run)


def output_paths(output: str, count: int) -> list[Path]:
    path = Path(output)
    if path.suffix.lower() != ".png":
        raise FaceStudioError(
            f"output '{output}' must end in .png (the settings are stored in the PNG)"
        )
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(count)]


def parse_boxes(text: str) -> list[list[float]] | str:
    if text == "auto":
        return "auto"
    try:
        return [[float(v) for v in box.split(",")] for box in text.split(";") if box.strip()]
    except ValueError:
        raise FaceStudioError(
            f"--regions '{text}' is not 'auto' or 'x0,y0,x1,y1;...' numbers"
        ) from None


def run(args: argparse.Namespace) -> int:
    if args.num < 1:
        raise FaceStudioError(f"--num must be at least 1, got {args.num}")
    paths = [check_output_path(p, args.force) for p in output_paths(args.output, args.num)]
    if args.example and args.face:
        raise FaceStudioError("give --face PHOTO or --example, not both")
    people = ([args.face] if args.face else []) + [p.split(",") for p in args.person]
    for photo in (p for person in people for p in person):
        if not Path(photo).is_file():
            raise FaceStudioError(f"cannot read '{photo}': no such file")
    if args.example:
        people.insert(0, [example_photo()])
    if not people:
        raise FaceStudioError("give at least one photo with --face PHOTO (or try --example)")
    style = load_image(args.style) if args.style else None
    content = load_image(args.image) if args.image else None
    regions = parse_boxes(args.regions)

    import diffusers
    import torch
    import transformers

    from facestudio.pipeline import FaceStudioPipeline

    # Loading is quick and its per-file bars are noise; the denoising bar stays.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()

    model = args.model or default_model()
    dtype = torch.float16 if args.fp16 else torch.float32
    pipeline = FaceStudioPipeline.from_pretrained(model, dtype=dtype).to(args.device)
    result = pipeline(
        prompt=args.prompt,
        identities=people,
        style_image=style,
        image=content,
        strength=args.strength,
        regions=regions,
        alpha=args.alpha,
        mix_weights=args.mix,
        face_index=args.face_index,
        style_guidance_scale=args.style_scale,
        face_guidance_scale=args.face_scale,
        num_inference_steps=args.steps,
        height=args.height,
        width=args.width,
        num_images_per_prompt=args.num,
        seed=args.seed,
        background=args.background,
    )
    for warning in result.metadata[0]["warnings"]:
        print(f"facestudio: warning: {warning}", file=sys.stderr)
    if args.example:
        for metadata in result.metadata:
            metadata["people"][0]["sources"] = [{"photo": EXAMPLE_NAME}]
    encoded = [
        encode_png(image, png_text(metadata, model))
        for image, metadata in zip(result.images, result.metadata, strict=True)
    ]
    for path, data in zip(paths, encoded, strict=True):
        write_bytes_atomic(path, data)
        print(f"wrote {path}")
    print(f"seed {result.metadata[0]['seed']}")
    return 0


def png_text(metadata: dict, model: str) -> dict[str, str]:
    """PNG text chunks: a plain statement that the image is generated, and every setting."""
    settings = {**metadata, "model": str(model)}
    return {
        "Software": f"FaceStudio {__version__}",
        "Description": "AI-generated image (FaceStudio); not a photograph",
        "facestudio": json.dumps(settings, sort_keys=True),
    }


BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "bundled_model"


def default_model(folder: Path = BUNDLED_MODEL) -> str:
    """The small model that ships in the package (see its README.md model card)."""
    if not (folder / "model_index.json").is_file():
        raise FaceStudioError(
            f"no bundled model in '{folder}'; give --model with a FaceStudio pipeline folder"
        )
    return str(folder)
