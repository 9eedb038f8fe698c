"""FaceStudio model folder: lets diffusers' generic loader find the pipeline class.

    DiffusionPipeline.from_pretrained(this_folder, trust_remote_code=True)

This file only imports FaceStudioPipeline from the installed facestudio package
(pip install facestudio); facestudio.FaceStudioPipeline.from_pretrained(this_folder) loads the
folder without it.
"""

from facestudio.pipeline import FaceStudioPipeline

__all__ = ["FaceStudioPipeline"]
