"""The generation pipeline: `FaceStudioPipeline`, the request it runs and how inputs resolve.

`FaceStudioPipeline` (torch, diffusers) loads on first use, so that front ends can read
`limits`, `ModelInfo` and validate a `GenerationRequest` in milliseconds.
"""

from __future__ import annotations

_LAZY = {
    "FaceStudioPipeline": "facestudio.pipeline.pipeline",
    "FaceStudioPipelineOutput": "facestudio.pipeline.pipeline",
    "GenerationRequest": "facestudio.pipeline.request",
    "ModelInfo": "facestudio.pipeline.model_info",
    "to_pixels": "facestudio.pipeline.pipeline",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facestudio.pipeline' has no attribute {name!r}")


__all__ = [
    "FaceStudioPipeline",
    "FaceStudioPipelineOutput",
    "GenerationRequest",
    "ModelInfo",
    "to_pixels",
]
