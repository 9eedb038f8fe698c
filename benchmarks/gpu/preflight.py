"""Checks before the first expensive step: every needed package imports, the device is there,
and the report can be written. Each problem is one line naming the fix.

`CARRIED` is the one list of packages that a GPU machine without network lacks (its image has
torch, transformers, accelerate, safetensors, numpy, pillow, scipy, scikit-image, opencv and
onnxruntime, but not diffusers, bitsandbytes or the watermark library): benchmarks/gpu/wheels.py
downloads exactly these.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

REQUIRED = ("torch", "numpy", "PIL", "diffusers", "transformers", "accelerate", "safetensors")
"""Import names the suite cannot run without (facestudio itself comes from src/)."""

OPTIONAL = {
    "bitsandbytes": "8-bit Adam in the training section",
    "dlib": "the per-photo cost (dlib face analysis on the CPU)",
    "face_recognition_models": "the per-photo cost (dlib's model files)",
    "imwatermark": "the invisible watermark in generated images (the `app` extra)",
}

CARRIED = {
    "diffusers": "diffusers==0.42.1",
    "importlib_metadata": "importlib-metadata==10.2.0",
    "bitsandbytes": "bitsandbytes==0.50.2",
    "imwatermark": "invisible-watermark==0.2.0",
    "pywt": "PyWavelets==1.9.0",
}
"""Import name -> pinned requirement of each wheel that travels to the GPU machine."""


class PreflightError(Exception):
    """The suite cannot start; the message is one line naming the fix."""


def check_imports() -> dict:
    """Import every required package (a version clash shows only on import); report versions
    and which optional packages are there."""
    failed = []
    for name in (*REQUIRED, "facestudio"):
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a dependency's own error at import time
            failed.append(f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
    if failed:
        raise PreflightError(
            f"cannot import {'; '.join(failed)}; on a GPU machine run "
            "benchmarks/gpu/run_on_device.sh with benchmarks/gpu/wheels carried "
            "(made by python benchmarks/gpu/wheels.py), elsewhere pip install -e ."
        )
    versions = {
        name: _version(name) for name in ("torch", "diffusers", "transformers", "accelerate")
    }
    optional = {}
    for name, purpose in OPTIONAL.items():
        try:
            importlib.import_module(name)
            optional[name] = "available"
        except Exception as exc:
            optional[name] = f"not available ({type(exc).__name__}); without it: no {purpose}"
    return {"versions": versions, "optional": optional}


def check_device(mode: str) -> dict:
    """The full suite needs CUDA; the tiny one runs on the CPU. Imports torch alone, so a
    machine without CUDA is told so before the slower imports."""
    try:
        import torch
    except ImportError as exc:
        raise PreflightError(f"cannot import torch ({exc}); install PyTorch first") from None

    if mode == "full" and not torch.cuda.is_available():
        raise PreflightError(
            "no CUDA device: the full suite measures a GPU; run it with --tiny on a CPU"
        )
    if torch.cuda.is_available() and mode == "full":
        properties = torch.cuda.get_device_properties(0)
        return {
            "device": torch.cuda.get_device_name(0),
            "cuda": torch.version.cuda,
            "memory_gb": round(properties.total_memory / 2**30, 1),
            "multiprocessors": properties.multi_processor_count,
        }
    return {"device": "cpu", "threads": torch.get_num_threads()}


def check_output(path: Path) -> None:
    """The report goes to a regular file (replaced) in a folder that can be written."""
    if path.exists() and not path.is_file():
        raise PreflightError(
            f"'{path}' exists and is not a regular file; remove it or pick --results-dir"
        )
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise PreflightError(f"'{folder}' is not a folder; pick another --results-dir")
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".gpu-suite-write-probe"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PreflightError(
            f"cannot write to '{folder}' ({exc.strerror}); pick another --results-dir"
        ) from None


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return getattr(importlib.import_module(name), "__version__", "unknown")
