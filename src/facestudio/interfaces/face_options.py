"""Command-line options that choose and configure the face analysis backend (shared by commands)."""

from __future__ import annotations

import argparse

from facestudio.faces import DlibBackendConfig, FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig
from facestudio.faces.cache import default_cache_dir


def add_face_backend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("face analysis backend")
    group.add_argument(
        "--backend",
        choices=("dlib", "torch", "onnx"),
        default="dlib",
        help="dlib (default; offline, from PyPI), torch (dlib's detector, its recogniser ported "
        "to PyTorch: batched, on a GPU when there is one) or onnx (YuNet + an ArcFace-style "
        "recogniser)",
    )
    group.add_argument(
        "--dlib-detector",
        choices=("hog", "cnn"),
        default="hog",
        help="dlib detector: hog (fast, frontal faces) or cnn (slower, finds more)",
    )
    group.add_argument(
        "--detector-model", metavar="PATH", help="onnx backend: YuNet detector .onnx"
    )
    group.add_argument("--recognizer-model", metavar="PATH", help="onnx backend: recogniser .onnx")
    group.add_argument(
        "--threshold",
        type=float,
        metavar="COS",
        help="same-person cosine threshold (default: the backend's calibrated value)",
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read or write the cache of detections and embeddings",
    )


def analyzer_config_from_args(args: argparse.Namespace) -> FaceAnalyzerConfig:
    dlib = DlibBackendConfig(detector=args.dlib_detector)
    onnx = OnnxBackendConfig(
        detector_model=args.detector_model or "", recognizer_model=args.recognizer_model or ""
    )
    if args.threshold is not None:
        dlib = DlibBackendConfig(detector=args.dlib_detector, threshold=args.threshold)
        onnx = OnnxBackendConfig(
            detector_model=onnx.detector_model,
            recognizer_model=onnx.recognizer_model,
            threshold=args.threshold,
        )
    cache_dir = None if args.no_cache else str(default_cache_dir())
    return FaceAnalyzerConfig(backend=args.backend, dlib=dlib, onnx=onnx, cache_dir=cache_dir)


def analyzer_from_args(args: argparse.Namespace) -> FaceAnalyzer:
    return FaceAnalyzer(analyzer_config_from_args(args))
