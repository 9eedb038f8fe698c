"""What the conditioning encoder sees: dlib-network similarity of portraits through each model's
autoencoder to their own conditioning embeddings, on prepared samples (their stored landmarks
align the 64-px faces, which dlib's own detector mostly misses). Biased by construction (the
identity loss trains against this encoder): read it beside the independent ceilings.

    python recipes/identity_loss/encoder_similarity.py --data PREPARED --model bundled \
        --model RUN/decoder-identity-exported --samples 200 --out encoder_similarity.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from facestudio.data.dataset import ReconstructionDataset
from facestudio.model.face_encoder import DlibResNetEncoder
from facestudio.pipeline import FaceStudioPipeline


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a facestudio prepare folder")
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dataset = ReconstructionDataset(args.data)
    spread = range(0, len(dataset), max(1, len(dataset) // args.samples))
    faces = [item for item in map(dataset.__getitem__, spread) if bool(item["has_face"])]
    batch = default_collate(faces[: args.samples])
    encoder = DlibResNetEncoder.from_pretrained()
    targets = F.normalize(batch["face"], dim=-1)

    def similarity(images: torch.Tensor, roll: int = 0) -> float:
        embedded = encoder.identity_embedding(images, batch["face_landmarks"], (-1, 1))
        return float((embedded * targets.roll(roll, 0)).sum(-1).mean())

    report = {
        "samples": len(targets),
        "portrait": similarity(batch["image"]),
        "portrait_impostor": similarity(batch["image"], 1),
    }
    for model in args.model:
        vae = FaceStudioPipeline.from_pretrained(model).vae
        rebuilt = torch.cat(
            [
                vae.decode(vae.encode(part).latent_dist.mean).sample
                for part in batch["image"].split(32)
            ]
        )
        report[model] = {"through_autoencoder": similarity(rebuilt)}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
