"""Latents of the training images, encoded once by the frozen autoencoder and looked up by
sample index, or encoded per batch when there is no cache (`train.cache_latents`).

Encoding a whole data set takes minutes on a CPU (12k portraits at 128 px: about ten), and a
long run resumes many times, so the table is also kept in the run folder
(`latents.safetensors`), with a fingerprint of what made it: the autoencoder's config and
encoding weights, the prepared data's index and the training resolution. A table whose fingerprint
differs is encoded again, never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from facestudio.model import latent_space

CACHE_FILE = "latents.safetensors"
DECODING = ("decoder.", "post_quant_conv.")
"""State-dict prefixes of the autoencoders' decoding halves: not part of a latent's making."""


@torch.no_grad()
def encode_dataset(vae: nn.Module, dataset, batch_size: int = 64) -> torch.Tensor:
    """Every training image's latent (`latent_space.encode`), in dataset order."""
    return torch.cat(
        [latent_space.encode(vae, b["image"]).cpu() for b in batches(dataset, batch_size)]
    )


def batches(dataset, batch_size: int):
    """The dataset in order, collated `batch_size` at a time. Not a DataLoader: iterating one
    draws from torch's global generator, and a run that reads these tables back from its
    folder instead of making them would then continue with other random numbers."""
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        yield torch.utils.data.default_collate([dataset[i] for i in indices])


def stored_latents(vae: nn.Module, dataset, folder: Path | None, write: bool) -> torch.Tensor:
    """`encode_dataset`, read from the run `folder` when its fingerprint matches, else encoded
    (and written there when `write`: the main process of a run)."""
    return stored_tables(
        folder,
        getattr(dataset, "cache_name", CACHE_FILE),
        fingerprint(vae, dataset),
        lambda: {"latents": encode_dataset(vae, dataset)},
        write,
    )["latents"]


def stored_tables(
    folder: Path | None,
    name: str,
    fingerprint: str,
    make: Callable[[], dict[str, torch.Tensor]],
    write: bool,
) -> dict[str, torch.Tensor]:
    """Tensors that take long to make: read from `folder / name` when it was made with the same
    `fingerprint`, else made (and written when `write`, atomically)."""
    if folder is None:
        return _contiguous(make())
    path = Path(folder) / name
    if path.is_file():
        with safe_open(path, "pt") as stored:
            if (stored.metadata() or {}).get("fingerprint") == fingerprint:
                return {key: stored.get_tensor(key) for key in stored.keys()}  # noqa: SIM118
    tables = _contiguous(make())
    if write:
        temporary = path.with_name(f".{name}.{os.getpid()}.tmp")
        save_file(tables, temporary, {"fingerprint": fingerprint})
        os.replace(temporary, path)
    return tables


def _contiguous(tables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tables in the layout they are read back in: a strided one (an encoder may answer
    channels-last) would send the U-Net down other kernels, and a resumed run would round
    differently from the run that made the table."""
    return {key: value.contiguous() for key, value in tables.items()}


def batch_latents(vae: nn.Module, batch: dict, cache: torch.Tensor | None) -> torch.Tensor:
    """A batch's latents: looked up in `cache` (`encode_dataset`) by sample index, or encoded."""
    if cache is not None:
        return cache[batch["index"].cpu()].to(batch["image"].device)
    return latent_space.encode(vae, batch["image"])


def fingerprint(vae: nn.Module, dataset) -> str:
    """What made a data set's latents: encoder config and weights, data index, size, view."""
    digest = hashlib.sha256()
    digest.update(json.dumps(dict(vae.config), sort_keys=True, default=str).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        if name.startswith(DECODING):  # a decoder fine-tune keeps the latents valid
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(dataset.index, sort_keys=True).encode())
    digest.update(getattr(dataset, "cache_name", CACHE_FILE).encode())
    digest.update(f"{dataset.resolution}:{len(dataset)}".encode())
    return digest.hexdigest()
