"""FaceStudio: identity-preserving image generation from a prompt, a style image and face photos."""

from __future__ import annotations

from pathlib import Path

from facestudio.errors import FaceStudioError

__version__ = "0.1.0"

BUNDLED_MODEL = str(Path(__file__).resolve().parent / "bundled_model")
"""The folder of the small model shipped in the package: `FaceStudioPipeline.from_pretrained(
facestudio.BUNDLED_MODEL)` (or `"bundled"`), or diffusers' `DiffusionPipeline.from_pretrained`."""

# Heavy modules (torch, diffusers) load on first use, so `facestudio faces` starts fast. The
# model classes are reachable here because diffusers finds a pipeline folder's custom
# components as `facestudio.<ClassName>`.
_LAZY = {
    "FaceStudioPipeline": "facestudio.pipeline",
    "GenerationRequest": "facestudio.pipeline.request",
    "HybridGuidance": "facestudio.model",
    "StyleEncoder": "facestudio.model",
    "MultiIdentityAttnProcessor": "facestudio.model",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facestudio' has no attribute {name!r}")


__all__ = [
    "BUNDLED_MODEL",
    "FaceStudioError",
    "FaceStudioPipeline",
    "GenerationRequest",
    "HybridGuidance",
    "StyleEncoder",
    "__version__",
]
