"""The second route, for comparison only: the same network from the npm package @vladmandic/face-api.

That package (MIT) ships dlib's face descriptor network as `model/face_recognition_model.bin`
with a weights manifest: 117 tensors in TensorFlow layout, each quantised to uint8 with a
per-tensor scale and minimum. This script dequantises them, folds each `scale` layer into its
convolution and writes safetensors that `DlibResNetEncoder.from_pretrained(path)` reads, so
`benchmarks/face_encoder_port.py --weights PATH` can measure how far this route is from dlib.
The package ships the exact route's output (`convert_dlib.py`), not this one.

    npm pack @vladmandic/face-api && tar xzf vladmandic-face-api-*.tgz
    python recipes/face_encoder/convert_faceapi.py package/model --out faceapi.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from facestudio.model.face_encoder import DlibResNetEncoder

BLOCKS = [
    *(f"conv32_{k}" for k in (1, 2, 3)),
    "conv64_down",
    *(f"conv64_{k}" for k in (1, 2, 3)),
    "conv128_down",
    *(f"conv128_{k}" for k in (1, 2)),
    "conv256_down",
    *(f"conv256_{k}" for k in (1, 2)),
    "conv256_down_out",
]
"""face-api's names of the 15 residual blocks, input first (the order of DlibResNetEncoder)."""

DLIB_MEANS = (122.782, 117.001, 104.298)
"""face-api subtracts dlib's input means too (its manifest holds no input layer)."""


def read_tensors(folder: Path) -> dict[str, np.ndarray]:
    """Tensors of face_recognition_model.bin by manifest name, uint8 ones dequantised.

    Most tensors are uint8 (value = q·scale + min); a few (the 64-filter convolutions) are
    stored as float32.
    """
    manifest = json.loads((folder / "face_recognition_model-weights_manifest.json").read_text())
    data = np.fromfile(folder / "face_recognition_model.bin", dtype=np.uint8)
    tensors, offset = {}, 0
    for entry in manifest[0]["weights"]:
        count = int(np.prod(entry["shape"]))
        quant = entry.get("quantization")
        if quant is None and entry["dtype"] == "float32":
            values = data[offset : offset + 4 * count].view("<f4").astype(np.float64)
            offset += 4 * count
        elif quant is not None and quant["dtype"] == "uint8":
            values = data[offset : offset + count] * quant["scale"] + quant["min"]
            offset += count
        else:
            raise ValueError(f"{entry['name']}: unexpected storage {quant or entry['dtype']}")
        tensors[entry["name"]] = values.reshape(entry["shape"])
    if offset != data.size:
        raise ValueError(f"manifest covers {offset} bytes of {data.size}")
    return tensors


def folded(tensors: dict, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weight (out, in, kh, kw) and bias with the following per-channel scale folded in."""
    weight = torch.from_numpy(tensors[f"{prefix}/conv/filters"]).permute(3, 2, 0, 1)
    bias = torch.from_numpy(tensors[f"{prefix}/conv/bias"])
    gamma = torch.from_numpy(tensors[f"{prefix}/scale/weights"])
    beta = torch.from_numpy(tensors[f"{prefix}/scale/biases"])
    return (weight * gamma.view(-1, 1, 1, 1)).float().contiguous(), (bias * gamma + beta).float()


def to_state_dict(tensors: dict) -> dict[str, torch.Tensor]:
    state = {"input_mean": torch.tensor(DLIB_MEANS, dtype=torch.float32)}
    state["stem.weight"], state["stem.bias"] = folded(tensors, "conv32_down")
    for index, name in enumerate(BLOCKS):
        for conv in ("conv1", "conv2"):
            weight, bias = folded(tensors, f"{name}/{conv}")
            state[f"blocks.{index}.{conv}.weight"] = weight
            state[f"blocks.{index}.{conv}.bias"] = bias
    state["fc.weight"] = torch.from_numpy(tensors["fc"].T.copy()).float()
    DlibResNetEncoder().load_state_dict(state, strict=True)  # checks every name and shape
    return state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_folder", type=Path, help="the npm package's model/ folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not (args.model_folder / "face_recognition_model.bin").is_file():
        print(f"error: no face_recognition_model.bin in {args.model_folder}", file=sys.stderr)
        return 2
    from safetensors.torch import save_file

    state = to_state_dict(read_tensors(args.model_folder))
    save_file(state, str(args.out), metadata={"source": "@vladmandic/face-api (MIT), mostly uint8"})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
