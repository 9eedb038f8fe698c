"""Step 6 of the bundled small model: copy an exported pipeline into the package with its
weights stored in fp16 (they load as fp32; the CPU computes in fp32), and report how much
the fp16 storage changes generated images.

    python recipes/bundled_model/ship.py RUN/diffusion-exported src/facestudio/bundled_model \
        [--vae RUN/decoder-exported]

`--vae` takes the autoencoder from another export (a decoder fine-tune, stage 1b); it must
share the U-Net's latent space (same encoder weights and scaling factor), which is checked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file
from transfer import copy_as_fp16  # beside this script

from facestudio.pipeline import FaceStudioPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exported", help="pipeline folder from `facestudio export`")
    parser.add_argument("package_folder", help="where the bundled model goes")
    parser.add_argument("--force", action="store_true", help="replace the folder's weights")
    parser.add_argument(
        "--vae", help="export whose vae/ replaces the exported one's (same encoder)"
    )
    args = parser.parse_args()
    source, dest = Path(args.exported), Path(args.package_folder)
    if dest.exists() and any(dest.glob("*/*.safetensors")) and not args.force:
        raise SystemExit(f"'{dest}' already holds a model; give --force to replace its weights")
    files = {path.relative_to(source): path for path in source.rglob("*") if path.is_file()}
    if args.vae:
        vae_source = Path(args.vae)
        _check_same_latent_space(source / "vae", vae_source / "vae")
        files = {k: v for k, v in files.items() if k.parts[0] != "vae"}
        files.update(
            {p.relative_to(vae_source): p for p in (vae_source / "vae").rglob("*") if p.is_file()}
        )
    copy_as_fp16(files, dest)

    full, half = (
        FaceStudioPipeline.from_pretrained(source),
        FaceStudioPipeline.from_pretrained(dest),
    )
    if args.vae:
        full.register_modules(vae=AutoencoderKL.from_pretrained(Path(args.vae) / "vae"))
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


def _check_same_latent_space(vae: Path, other: Path) -> None:
    weights = "diffusion_pytorch_model.safetensors"
    first, second = load_file(vae / weights), load_file(other / weights)
    encoder = [k for k in first if k.startswith(("encoder.", "quant_conv."))]
    same_encoder = all(torch.equal(first[k], second[k]) for k in encoder)
    scale = [json.loads((v / "config.json").read_text())["scaling_factor"] for v in (vae, other)]
    if not same_encoder or scale[0] != scale[1]:
        raise SystemExit(
            f"'{other}' has another latent space than '{vae}'; give a decoder fine-tune of it"
        )


if __name__ == "__main__":
    main()
