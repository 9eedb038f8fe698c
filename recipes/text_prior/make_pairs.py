"""(Measured attributes, style embedding) of every training portrait and of its stylised twin:
what the prior trains on.

    python recipes/text_prior/make_pairs.py --model MODEL --data PREPARED --out RUN/pairs

MODEL is a pipeline folder (or "bundled") whose style encoder defines the space the prior
predicts into; PREPARED a `facestudio prepare` folder. For each sample the portrait and its
twin (training/stylize.py) are measured (training/captions.py) and their style inputs (face
masked) embedded. Writes `pairs.safetensors` (embeddings, sample index, twin flag) and
`attributes.jsonl` (one line per pair: attributes, style, person).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from facestudio.data.dataset import ReconstructionDataset
from facestudio.model.style_encoder import StyleEncoder
from facestudio.model.style_prior import style_space_id
from facestudio.pipeline.model_info import resolve_model
from facestudio.training.captions import measure
from facestudio.training.stylize import StylisedView, style_of


def load_style_encoder(model: str) -> StyleEncoder:
    folder = Path(resolve_model(model))
    return StyleEncoder.from_pretrained(folder / "style_encoder", use_safetensors=True).eval()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8 (numpy: small torch ops are slow here)."""
    array = (image.numpy().transpose(1, 2, 0) + 1.0) * 127.5
    return np.clip(np.round(array), 0, 255).astype(np.uint8)


def describe(item: dict, style: str | None) -> dict:
    return measure(
        to_uint8(item["image"]),
        item["face_box"].numpy(),
        item["face_landmarks"].numpy(),
        style,
    ).to_dict()


@torch.no_grad()
def make_pairs(encoder: StyleEncoder, dataset, batch_size: int = 64, limit: int = 0):
    """(embeddings (2N, D), rows): every sample, then its twin, in sample order."""
    people = dataset.identities()[0]
    views = ((dataset, False), (StylisedView(dataset), True))
    count = min(limit or len(dataset), len(dataset))
    embeddings, rows = [], []
    for view, twin in views:
        for start in tqdm(range(0, count, batch_size), desc="twins" if twin else "photos"):
            items = [view[i] for i in range(start, min(start + batch_size, count))]
            pixels = torch.stack([item["style_pixels"] for item in items])
            embeddings.append(encoder.embed_pixels(pixels).float())
            for item in items:
                index = int(item["index"])
                style = style_of(index) if twin else None
                rows.append(
                    {
                        "index": index,
                        "twin": twin,
                        "style": style,
                        "person": people[index],
                        "attributes": describe(item, style),
                    }
                )
    return torch.cat(embeddings), rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="first N samples only (tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # many small operations: threads only contend
    embeddings, rows = make_pairs(
        load_style_encoder(args.model), ReconstructionDataset(args.data), limit=args.limit
    )
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "embeddings": embeddings.contiguous(),
            "index": torch.tensor([r["index"] for r in rows]),
            "twin": torch.tensor([r["twin"] for r in rows]),
        },
        str(args.out / "pairs.safetensors"),
        metadata={
            "model": str(args.model),
            "data": str(args.data),
            "style_space": style_space_id(resolve_model(args.model)),
        },
    )
    with (args.out / "attributes.jsonl").open("w") as file:
        file.writelines(json.dumps(row) + "\n" for row in rows)
    print(f"{len(rows)} pairs, {embeddings.shape[1]}-d embeddings -> {args.out}")


if __name__ == "__main__":
    main()
