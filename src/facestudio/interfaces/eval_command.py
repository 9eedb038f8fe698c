"""`facestudio eval`: the field's identity metrics on any pipeline, with an independent recogniser."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import facestudio
from facestudio.configuration import check_dataclass
from facestudio.errors import FaceStudioError
from facestudio.outputs import check_new_folder
from facestudio.structured_files import quote

if TYPE_CHECKING:
    from facestudio.evaluation.benchmark import BenchmarkDefinition

MODELS_ENV = "FACESTUDIO_SCORING_MODELS"
CHECKOUT_MODELS = Path(facestudio.__file__).resolve().parents[2].parent / "shared" / "models"
"""A source checkout's `../shared/models` (found from the package, not the working folder);
an installed package has none and names its files with the flags or $FACESTUDIO_SCORING_MODELS."""
DEFAULT_DETECTOR = "face_detection_yunet_2026may.onnx"
DEFAULT_RECOGNIZER = "mobilefacenet.onnx"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a model: face similarity with/without/impostor identity, diversity, CLIP-T",
        description=(
            "Run a benchmark definition (YAML or JSON) on a pipeline and score the generated faces "
            "with a recogniser the model is not conditioned on. Writes results.json, results.md "
            "and an image grid per identity to --out."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR_OR_HUB_ID",
        help="pipeline to evaluate: a folder, hub id or 'bundled'",
    )
    parser.add_argument("--benchmark", required=True, metavar="FILE", help="benchmark definition")
    parser.add_argument("--out", required=True, metavar="DIR", help="results folder (new or empty)")
    parser.add_argument(
        "--detector-model",
        metavar="PATH",
        help=f"YuNet .onnx (default: {DEFAULT_DETECTOR} in ${MODELS_ENV} or the checkout's "
        "../shared/models)",
    )
    parser.add_argument(
        "--recognizer-model",
        metavar="PATH",
        help=f"recogniser .onnx (default: {DEFAULT_RECOGNIZER} in ${MODELS_ENV} or the checkout's "
        "../shared/models)",
    )
    parser.add_argument(
        "--allow-biased",
        action="store_true",
        help="score even with the conditioning recogniser (labelled biased)",
    )
    parser.add_argument(
        "--clip", metavar="DIR_OR_HUB_ID", help="CLIP checkpoint for prompt alignment (CLIP-T)"
    )
    parser.add_argument(
        "--ablations",
        nargs="+",
        default=["identity", "no_identity", "impostor"],
        choices=["identity", "no_identity", "impostor"],
    )
    parser.add_argument("--steps", type=int, help="override the definition's denoising steps")
    parser.add_argument("--style-scale", type=float, help="override the style guidance scale")
    parser.add_argument("--face-scale", type=float, help="override the face guidance scale")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facestudio.evaluation.benchmark import run_benchmark

    out = check_new_folder(args.out)
    definition = checked_definition(args)
    detector = scoring_model(args.detector_model, DEFAULT_DETECTOR, "--detector-model")
    recognizer = scoring_model(args.recognizer_model, DEFAULT_RECOGNIZER, "--recognizer-model")
    scorer, pipeline = _load_models(args, detector, recognizer)
    clip = None
    if args.clip:
        from facestudio.evaluation.clip_score import ClipTextImageScorer

        clip = ClipTextImageScorer(args.clip)
    status("generating and scoring")
    summary = run_benchmark(
        pipeline, definition, scorer, out, tuple(args.ablations), clip, progress=True
    )
    print((out / "results.md").read_text())
    if summary["biased_scoring"]:
        print(
            "facestudio: warning: scored with the conditioning recogniser; these numbers are biased"
        )
    return 0


def checked_definition(args: argparse.Namespace) -> BenchmarkDefinition:
    """The benchmark with the command's overrides, every value and photo checked, and the
    model's capabilities read from its configs: all before a model loads."""
    from facestudio.evaluation.benchmark import check_photos, load_definition
    from facestudio.pipeline.model_info import read_model_info

    definition = load_definition(args.benchmark)
    if args.steps is not None:
        definition.steps = args.steps
    if args.style_scale is not None:
        definition.style_guidance_scale = args.style_scale
    if args.face_scale is not None:
        definition.face_guidance_scale = args.face_scale
    check_dataclass(definition, "the benchmark with the command's options")
    info = read_model_info(args.model)
    if info is not None and definition.prompts != [None] and not info.has_text_prior:
        raise FaceStudioError(
            f"the benchmark has prompts but model {quote(args.model)} has no text prior; "
            "remove the prompts"
        )
    check_photos(definition)
    return definition


def _load_models(args: argparse.Namespace, detector: str, recognizer: str):
    """The independent scorer and the pipeline under test."""
    from facestudio.evaluation.face_scoring import FaceScorer
    from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig
    from facestudio.pipeline.model_info import public_model_name, resolve_model

    status("loading the scoring models")
    scorer_analyzer = FaceAnalyzer(
        FaceAnalyzerConfig(
            backend="onnx",
            onnx=OnnxBackendConfig(detector_model=detector, recognizer_model=recognizer),
        )
    )

    import diffusers

    from facestudio.pipeline import FaceStudioPipeline

    diffusers.utils.logging.disable_progress_bar()
    status(f"loading the model ({public_model_name(resolve_model(args.model))})")
    pipeline = FaceStudioPipeline.from_pretrained(args.model).to(args.device)
    pipeline.set_progress_bar_config(disable=True)
    scorer = FaceScorer(
        scorer_analyzer, pipeline.face_analyzer.backend.recognizer_id(), args.allow_biased
    )
    return scorer, pipeline


def scoring_model(given: str | None, name: str, flag: str) -> str:
    """The file a flag names, else `name` in $FACESTUDIO_SCORING_MODELS or the checkout's
    ../shared/models; one line naming the flag when there is none."""
    if given:
        if not Path(given).is_file():
            raise FaceStudioError(f"{flag} {quote(given)} does not exist; check the path")
        return given
    folders = [Path(os.environ[MODELS_ENV])] if os.environ.get(MODELS_ENV) else []
    for folder in [*folders, CHECKOUT_MODELS]:
        if (folder / name).is_file():
            return str(folder / name)
    raise FaceStudioError(
        f"no independent face recogniser found ({name}); give {flag} PATH.onnx (or set "
        f"${MODELS_ENV} to a folder holding {DEFAULT_DETECTOR} and {DEFAULT_RECOGNIZER})"
    )


def status(message: str) -> None:
    """A progress line on stderr, so the seconds before results are not silent."""
    print(f"facestudio: {message}…", file=sys.stderr, flush=True)
