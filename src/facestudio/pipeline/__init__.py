"""The generation pipeline: `FaceStudioPipeline` and how its inputs are resolved."""

from facestudio.pipeline.pipeline import FaceStudioPipeline, FaceStudioPipelineOutput

__all__ = ["FaceStudioPipeline", "FaceStudioPipelineOutput"]
