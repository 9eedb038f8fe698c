"""What lets diffusers' generic `DiffusionPipeline.from_pretrained` open a FaceStudio folder.

diffusers finds a pipeline class either in its own package (by `_class_name`) or, for custom
pipelines, in a Python file inside the model folder named by `_class_name = [file, class]`.
FaceStudio folders use the second mechanism with a two-line file that only imports
`FaceStudioPipeline` from the installed `facestudio` package. diffusers runs a folder's code
only when asked to, so the generic call is

    DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)

and without `trust_remote_code` diffusers says exactly that. `FaceStudioPipeline.from_pretrained`
never runs the folder's file: it reads `_class_name` as the class name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MODULE_NAME = "facestudio_pipeline"
CLASS_NAME = "FaceStudioPipeline"
CLASS_ENTRY = [MODULE_NAME, CLASS_NAME]
SHIM_SOURCE = '''"""FaceStudio model folder: lets diffusers' generic loader find the pipeline class.

    DiffusionPipeline.from_pretrained(this_folder, trust_remote_code=True)

This file only imports FaceStudioPipeline from the installed facestudio package
(pip install facestudio); facestudio.FaceStudioPipeline.from_pretrained(this_folder) loads the
folder without it.
"""

from facestudio.pipeline import FaceStudioPipeline

__all__ = ["FaceStudioPipeline"]
'''


def class_name_of(entry) -> str | None:
    """`_class_name` as a plain class name, whether diffusers' string or our [file, class]."""
    if isinstance(entry, list | tuple) and len(entry) == 2:
        return entry[1]
    return entry


def write_generic_loader(folder: str | os.PathLike) -> None:
    """Make a saved FaceStudio folder loadable by `DiffusionPipeline.from_pretrained`."""
    folder = Path(folder)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = CLASS_ENTRY
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (folder / f"{MODULE_NAME}.py").write_text(SHIM_SOURCE)
