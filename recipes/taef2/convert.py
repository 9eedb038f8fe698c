"""Convert the published TAEF2 checkpoints (two PyTorch state dicts) into a `TinyAutoencoder`
folder of safetensors, with the MIT licence notice beside the weights.

    python recipes/taef2/convert.py --taef2 ../shared/models/taef2 --out DIR [--check PHOTO ...]

The `.pth` files are read once, here, with `torch.load(weights_only=True)` (plain tensors, no
code) after their sha256 is checked against the published files; everything after this reads
safetensors. `--check` prints the PSNR of round trips of the given photos at 256 px (the
published network: about 36 dB on LFW photos).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facestudio.model.tiny_autoencoder import TinyAutoencoder

PUBLISHED = {
    "taef2_encoder.pth": "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
    "taef2_decoder.pth": "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
}
"""The checkpoints of madebyollin/taesd at commit 5cccb12dc72074a4be35680c3b108548a7c69978."""

NOTICE = "LICENSE-TAEF2.txt"


def load_published(folder: Path) -> TinyAutoencoder:
    """A `TinyAutoencoder` holding the published weights (hashes checked first)."""
    halves = {}
    for name, digest in PUBLISHED.items():
        path = folder / name
        found = hashlib.sha256(path.read_bytes()).hexdigest()
        if found != digest:
            raise SystemExit(f"{path}: sha256 {found} is not the published {digest}")
        halves[name.split("_")[1].removesuffix(".pth")] = torch.load(
            path, map_location="cpu", weights_only=True
        )
    model = TinyAutoencoder()
    state = {f"{half}.{key}": value for half, part in halves.items() for key, value in part.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def round_trip_psnr(model: TinyAutoencoder, photos: list[str], size: int = 256) -> float:
    pictures = [Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BICUBIC) for p in photos]
    images = torch.stack(
        [torch.from_numpy(np.asarray(p, np.float32)).permute(2, 0, 1) / 127.5 - 1 for p in pictures]
    )
    with torch.no_grad():
        rebuilt = model(images).sample.clamp(-1, 1)
    mse = ((rebuilt - images) / 2).pow(2).mean((1, 2, 3))
    return float((-10 * torch.log10(mse)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taef2", required=True, type=Path, help="folder with the .pth files")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--check", nargs="*", default=[], help="photos for a round-trip PSNR")
    args = parser.parse_args()
    model = load_published(args.taef2)
    model.save_pretrained(args.out, safe_serialization=True)
    shutil.copyfile(args.taef2 / "LICENSE", args.out / NOTICE)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters -> {args.out}")
    if args.check:
        print(f"round trip at 256 px: {round_trip_psnr(model, args.check):.2f} dB PSNR")


if __name__ == "__main__":
    main()
