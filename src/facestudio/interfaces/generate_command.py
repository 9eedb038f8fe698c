"""`facestudio generate`: images of one or more people from their photos, a style image, text."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

from facestudio.errors import FaceStudioError
from facestudio.fields import speak
from facestudio.interfaces.example_photo import EXAMPLE_NAME, example_photo
from facestudio.outputs import check_output_paths, write_outputs_atomic
from facestudio.pipeline import limits
from facestudio.pipeline.model_info import (
    BUNDLED_MODEL_DIR,
    public_model_name,
    read_model_info,
    resolve_model,
)
from facestudio.pipeline.request import GenerationRequest, Upload, parse_regions
from facestudio.provenance.save import provenance_png

CLI_NAMES = {
    "people": "--face PHOTO / --person PHOTO",
    "style_image": "--style IMAGE",
    "image": "--image IMAGE",
    "strength": "--strength",
    "prompt": "--prompt",
    "regions": "--regions",
    "width": "--width",
    "height": "--height",
    "num_inference_steps": "--steps",
    "seed": "--seed",
    "num_images": "--num",
    "style_guidance_scale": "--style-scale",
    "face_guidance_scale": "--face-scale",
    "alpha": "--alpha",
    "mix_weights": "--mix",
    "face_index": "--face-index N",
    "background": "--background",
    "auto_crop": "--no-auto-crop",
}
"""The request's fields as this command's options: how its messages name them
(`facestudio.fields`)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate images that keep the identity of the people in your photos",
        description=(
            "Generate images of one or more people. --face gives photos of the first person "
            "(several = multi-shot); each --person adds another person (comma-separated photos "
            "for several shots). Every PNG says it is generated and carries its settings and "
            "signed content credentials (C2PA; a test key unless FACESTUDIO_C2PA_CERT and "
            "FACESTUDIO_C2PA_KEY name yours). With --num N > 1, -o OUT.png writes OUT-0.png … "
            "OUT-<N-1>.png and prints each file with its seed."
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
        "--strength",
        type=float,
        help="image-to-image noise strength (0, 1], default 0.8; needs --image",
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
        help="FaceStudio pipeline folder, hub id, or 'bundled' (default: the small model in the "
        "package)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=25,
        help="denoising steps (default 25; at most the scheduler's training timesteps)",
    )
    parser.add_argument(
        "--style-scale", type=float, default=5.0, help="guidance scale for style and text"
    )
    parser.add_argument("--face-scale", type=float, default=5.0, help="guidance scale for identity")
    parser.add_argument("--seed", type=int, help="seed of the first image (image i uses seed + i)")
    parser.add_argument(
        "--num",
        type=int,
        default=1,
        help=f"number of images, 1–{limits.MAX_IMAGES_PER_CALL}; several go to OUT-0.png, "
        "OUT-1.png, … (each printed with its seed)",
    )
    size_help = (
        "output {} in pixels (default: what the model declares for this many people, such as "
        "one trained-size portrait per person side by side for the bundled model, which makes "
        "no other size; a model without that declaration takes a multiple of its factor, at most "
        f"{limits.MAX_NATIVE_MULTIPLE}× its native size and {limits.MAX_SIDE})"
    )
    parser.add_argument("--height", type=int, help=size_help.format("height"))
    parser.add_argument("--width", type=int, help=size_help.format("width"))
    parser.add_argument(
        "--background",
        choices=("random", "all"),
        default="random",
        help="what areas outside every person see (several people)",
    )
    parser.add_argument(
        "--no-auto-crop",
        dest="auto_crop",
        action="store_false",
        help="several people: use the style image as is, not cropped around its faces",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--fp16", action="store_true", help="half precision (GPU only; opt-in)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output PNG")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.set_defaults(run=run)


def output_paths(output: str, count: int) -> list[Path]:
    """`OUT.png` for one image; `OUT-0.png` … `OUT-<count-1>.png` for several."""
    path = Path(output)
    if path.suffix.lower() != ".png":
        raise FaceStudioError(
            f"output '{output}' must end in .png (the settings and credentials are stored in the PNG)"
        )
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(count)]


def input_files(request: GenerationRequest) -> list:
    """The files the request reads (an output may never be one of them, even with --force)."""
    images = [shot for shots in request.people for shot in shots] + [
        request.style_image,
        request.image,
    ]
    return [image for image in images if isinstance(image, str | os.PathLike)]


def build_request(args: argparse.Namespace) -> GenerationRequest:
    """The CLI's arguments as a `GenerationRequest` (nothing is read yet)."""
    if args.example and args.face:
        raise FaceStudioError("give --face PHOTO or --example, not both")
    people: list[list] = ([args.face] if args.face else []) + [
        [photo for photo in p.split(",") if photo] for p in args.person
    ]
    if args.example:
        people.insert(0, [example_upload()])
    if not people:
        raise FaceStudioError("give at least one photo with --face PHOTO (or try --example)")
    return GenerationRequest(
        people=people,
        style_image=args.style,
        image=args.image,
        strength=args.strength,
        prompt=args.prompt,
        regions=parse_regions(args.regions),
        width=args.width,
        height=args.height,
        num_inference_steps=args.steps,
        seed=args.seed,
        num_images=args.num,
        style_guidance_scale=args.style_scale,
        face_guidance_scale=args.face_scale,
        alpha=args.alpha,
        mix_weights=args.mix,
        face_index=args.face_index,
        background=args.background,
        auto_crop=args.auto_crop,
    )


def run(args: argparse.Namespace) -> int:
    """Generate, with every message in this command's words (its options, not field names)."""
    try:
        return generate(args)
    except FaceStudioError as exc:
        raise in_cli_words(exc) from None


def in_cli_words(error: FaceStudioError) -> FaceStudioError:
    """`error` (of the same class) with the request fields it names written as options."""
    spoken = speak(str(error), CLI_NAMES)
    if spoken == str(error):
        return error
    rewritten = copy.copy(error)
    rewritten.args = (spoken,)
    return rewritten


def generate(args: argparse.Namespace) -> int:
    # 1. Everything cheap, before the first side effect: arguments, limits, outputs, model configs.
    request = build_request(args)
    model = resolve_model(args.model)
    info = read_model_info(model)
    request.validate(info)
    paths = check_output_paths(
        output_paths(args.output, args.num), args.force, inputs=input_files(request)
    )
    status(f"checking device '{args.device}'")
    device, dtype = check_device(args.device, args.fp16)
    # 2. Photos and faces, before the model loads: "no face found" does not wait for it.
    analyzer = None
    prepared = None
    if info is not None:
        from facestudio.faces.analyzer import FaceAnalyzer, FaceAnalyzerConfig
        from facestudio.pipeline.inputs import prepare_request

        status("reading photos and finding faces")
        analyzer = FaceAnalyzer(FaceAnalyzerConfig.from_dict(info.face_analysis))
        prepared = prepare_request(request, lambda: analyzer, info)
    # 3. The model, then the images.
    status(f"loading the model ({public_model_name(model)})")
    pipeline = load_pipeline(model, device, dtype)
    if analyzer is not None:
        pipeline.set_face_analyzer(analyzer)
    result = pipeline(request=request, prepared=prepared)
    for warning in result.metadata[0]["warnings"]:
        print(f"facestudio: warning: {speak(warning, CLI_NAMES)}", file=sys.stderr)
    encoded = [
        provenance_png(image, metadata, path.name)
        for image, metadata, path in zip(result.images, result.metadata, paths, strict=True)
    ]
    write_outputs_atomic(list(zip(paths, encoded, strict=True)))  # all or none
    for path, metadata in zip(paths, result.metadata, strict=True):
        print(f"wrote {path} (seed {metadata['seed']})")
    return 0


def check_device(name: str, fp16: bool):
    """The torch device and dtype, refused in one line when this machine cannot use them."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise FaceStudioError(
            f"--device '{name}' is not a torch device; use cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "has no CUDA support" if torch.version.cuda is None else "finds no CUDA GPU"
        raise FaceStudioError(
            f"--device {name}: this torch ({torch.__version__}) {build}; use --device cpu or "
            "install a CUDA build of torch"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise FaceStudioError(
            f"--device {name}: there are {torch.cuda.device_count()} CUDA device(s)"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FaceStudioError(f"--device {name}: MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise FaceStudioError(f"--device {name}: FaceStudio runs on cpu, cuda or mps")
    if fp16 and device.type == "cpu":
        raise FaceStudioError("--fp16 needs a GPU (--device cuda); on a CPU use the default fp32")
    return device, torch.float16 if fp16 else torch.float32


def load_pipeline(model: str, device, dtype):
    import diffusers
    import transformers

    from facestudio.pipeline import FaceStudioPipeline

    # Loading is quick and its per-file bars are noise; the denoising bar stays.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    return FaceStudioPipeline.from_pretrained(model, dtype=dtype).to(device)


def status(message: str) -> None:
    """A progress line on stderr, so the seconds before the progress bar are not silent."""
    print(f"facestudio: {message}…", file=sys.stderr, flush=True)


def example_upload() -> Upload:
    """The `--example` photo as an upload named for the metadata."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(example_photo()).save(buffer, format="PNG")
    return Upload(EXAMPLE_NAME, buffer.getvalue())


def default_model(folder: Path = BUNDLED_MODEL_DIR) -> str:
    """The small model that ships in the package (see its README.md model card)."""
    if not (folder / "model_index.json").is_file():
        raise FaceStudioError(
            f"no bundled model in '{folder}'; give --model with a FaceStudio pipeline folder"
        )
    return str(folder)
