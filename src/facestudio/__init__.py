"""FaceStudio: identity-preserving image generation from a prompt, a style image and face photos."""

from __future__ import annotations

from facestudio.errors import FaceStudioError

__version__ = "0.1.0"

# Heavy modules (torch, diffusers) load on first use, so `facestudio faces` starts fast. The
# model classes are reachable here because diffusers finds a pipeline folder's custom
# components as `facestudio.<ClassName>`.
_LAZY = {
    "FaceStudioPipeline": "facestudio.pipeline",
    "HybridGuidance": "facestudio.model",
    "StyleEncoder": "facestudio.model",
    "MultiIdentityAttnProcessor": "facestudio.model",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facestudio' has no attribute {name!r}")


__all__ = ["FaceStudioError", "FaceStudioPipeline", "HybridGuidance", "StyleEncoder", "__version__"]
