"""`facestudio eval`: the field's identity metrics on any pipeline, with an independent recogniser."""

from __future__ import annotations

import argparse
from pathlib import Path

from facestudio.errors import FaceStudioError

DEFAULT_MODELS = Path("../shared/models")
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
        "--model", required=True, metavar="DIR_OR_HUB_ID", help="pipeline to evaluate"
    )
    parser.add_argument("--benchmark", required=True, metavar="FILE", help="benchmark definition")
    parser.add_argument("--out", required=True, metavar="DIR", help="results folder (new or empty)")
    parser.add_argument(
        "--detector-model",
        metavar="PATH",
        help=f"YuNet .onnx (default: {DEFAULT_MODELS}/{DEFAULT_DETECTOR})",
    )
    parser.add_argument(
        "--recognizer-model",
        metavar="PATH",
        help=f"recogniser .onnx (default: {DEFAULT_MODELS}/{DEFAULT_RECOGNIZER})",
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
    from facestudio.evaluation.benchmark import load_definition, run_benchmark
    from facestudio.evaluation.face_scoring import FaceScorer
    from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FaceStudioError(f"results folder '{out}' is not empty; choose a new one")
    definition = load_definition(args.benchmark)
    if args.steps is not None:
        definition.steps = args.steps
    if args.style_scale is not None:
        definition.style_guidance_scale = args.style_scale
    if args.face_scale is not None:
        definition.face_guidance_scale = args.face_scale
    detector = args.detector_model or str(DEFAULT_MODELS / DEFAULT_DETECTOR)
    recognizer = args.recognizer_model or str(DEFAULT_MODELS / DEFAULT_RECOGNIZER)
    if not Path(detector).is_file() or not Path(recognizer).is_file():
        raise FaceStudioError(
            "no independent face recogniser found; give --detector-model (YuNet .onnx) and "
            "--recognizer-model (ArcFace-style .onnx)"
        )
    scorer_analyzer = FaceAnalyzer(
        FaceAnalyzerConfig(
            backend="onnx",
            onnx=OnnxBackendConfig(detector_model=detector, recognizer_model=recognizer),
        )
    )

    import diffusers

    from facestudio.pipeline import FaceStudioPipeline

    diffusers.utils.logging.disable_progress_bar()
    pipeline = FaceStudioPipeline.from_pretrained(args.model).to(args.device)
    pipeline.set_progress_bar_config(disable=True)
    scorer = FaceScorer(
        scorer_analyzer, pipeline.face_analyzer.backend.recognizer_id(), args.allow_biased
    )
    clip = None
    if args.clip:
        from facestudio.evaluation.clip_score import ClipTextImageScorer

        clip = ClipTextImageScorer(args.clip)
    summary = run_benchmark(pipeline, definition, scorer, out, tuple(args.ablations), clip)
    print((out / "results.md").read_text())
    if summary["biased_scoring"]:
        print(
            "facestudio: warning: scored with the conditioning recogniser; these numbers are biased"
        )
    return 0
