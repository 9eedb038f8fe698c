"""Shared fixtures: the real photos and models in ../shared, and analyzers built on them.

Without ../shared the tests that need it are skipped, except under CI (`CI` set), where a
missing file is a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
YUNET = SHARED / "models/face_detection_yunet_2026may.onnx"
MOBILEFACENET = SHARED / "models/mobilefacenet.onnx"


def launch_two_cpu_processes(
    args: list[str], port: int, env: dict | None = None, script: str | None = None
):
    """Run `facestudio ARGS` (or `python SCRIPT ARGS`) as two synchronised CPU processes (gloo)
    under accelerate."""
    import subprocess
    import sys

    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", **(env or {})}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--main_process_port",
            str(port),
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            *(["-m", "facestudio.interfaces.cli"] if script is None else [script]),
            *args,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def shared_file(relative: str) -> Path:
    """A file under ../shared; skips the test when absent, fails under CI."""
    path = SHARED / relative
    if not path.exists():
        message = f"missing shared file {path}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads(shared_file("data/MANIFEST.json").read_text())


@pytest.fixture(scope="session")
def face_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("face-cache"))


def onnx_config(cache_dir: str | None) -> FaceAnalyzerConfig:
    onnx = OnnxBackendConfig(
        detector_model=str(shared_file("models/face_detection_yunet_2026may.onnx")),
        recognizer_model=str(shared_file("models/mobilefacenet.onnx")),
    )
    return FaceAnalyzerConfig(backend="onnx", onnx=onnx, cache_dir=cache_dir)


def dlib_config(cache_dir: str | None) -> FaceAnalyzerConfig:
    return FaceAnalyzerConfig(backend="dlib", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def dlib_analyzer(face_cache) -> FaceAnalyzer:
    return FaceAnalyzer(dlib_config(face_cache))


@pytest.fixture(scope="session")
def onnx_analyzer(face_cache) -> FaceAnalyzer:
    return FaceAnalyzer(onnx_config(face_cache))


@pytest.fixture(scope="session", params=["dlib", "onnx"])
def analyzer(request, dlib_analyzer, onnx_analyzer) -> FaceAnalyzer:
    return dlib_analyzer if request.param == "dlib" else onnx_analyzer


@pytest.fixture(scope="session")
def person_photos(manifest) -> dict[str, list[Path]]:
    """A few people with several clear photos each (the deepface set)."""
    people = manifest["sets"]["deepface"]["identities"]
    return {person: [shared_file(f"data/{p}") for p in photos] for person, photos in people.items()}


@pytest.fixture(scope="session")
def tiny_pipeline():
    """A FaceStudioPipeline of tiny random components (64×64 images, 128-d dlib faces, text prior)."""
    from facestudio.model.components import random_components
    from facestudio.pipeline import FaceStudioPipeline

    pipeline = FaceStudioPipeline(**random_components())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="session")
def tiny_pipeline_folder(tiny_pipeline, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-pipeline")
    tiny_pipeline.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def segmenter():
    """The bundled person segmenter; the `segment` extra is part of `test`, so CI must have it."""
    from facestudio.faces.segmentation import PersonSegmenter, segmenter_available

    if not segmenter_available():
        if os.environ.get("CI"):
            pytest.fail("ai-edge-litert is missing: install facestudio[test]")
        pytest.skip("ai-edge-litert not installed (pip install 'facestudio[segment]')")
    return PersonSegmenter()
