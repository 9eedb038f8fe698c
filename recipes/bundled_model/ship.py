"""Step 6 of the bundled small model: copy an exported pipeline into the package with its
weights stored in fp16 (they load as fp32; the CPU computes in fp32), and report how much
the fp16 storage changes generated images.

    python recipes/bundled_model/ship.py RUN/diffusion-exported src/facestudio/bundled_model
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from facestudio.pipeline import FaceStudioPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exported", help="pipeline folder from `facestudio export`")
    parser.add_argument("package_folder", help="where the bundled model goes")
    parser.add_argument("--force", action="store_true", help="replace the folder's weights")
    args = parser.parse_args()
    source, dest = Path(args.exported), Path(args.package_folder)
    if dest.exists() and any(dest.glob("*/*.safetensors")) and not args.force:
        raise SystemExit(f"'{dest}' already holds a model; give --force to replace its weights")
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            tensors = {
                k: v.half() if v.is_floating_point() else v for k, v in load_file(path).items()
            }
            save_file(tensors, target, metadata={"format": "pt"})
        else:
            shutil.copyfile(path, target)

    full, half = (
        FaceStudioPipeline.from_pretrained(source),
        FaceStudioPipeline.from_pretrained(dest),
    )
    face = torch.nn.functional.normalize(torch.randn(full.guidance.config.face_dim), dim=0).numpy()
    differences = []
    for seed in range(4):
        a, b = (
            np.asarray(p(identities=[face], seed=seed, output_type="np").images, np.int16)
            for p in (full, half)
        )
        differences.append(np.abs(a - b))
    size = sum(p.stat().st_size for p in dest.rglob("*.safetensors")) / 2**20
    worst = max(int(d.max()) for d in differences)
    mean = float(np.mean([d.mean() for d in differences]))
    print(
        f"{dest}: {size:.1f} MiB of weights; fp16 storage changes pixels by {mean:.3f} on average, {worst} at most (of 255)"
    )


if __name__ == "__main__":
    main()
