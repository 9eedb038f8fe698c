"""An exponential moving average of an objective's trained parameters, kept by parameter name.

Checkpoints store it as `ema.safetensors` keyed like `model.safetensors` (`unet.conv_in.weight`),
so the file says which tensor is which and export can apply it to the same names; its metadata
holds the number of averaging steps, which sets the decay warm-up, so a resumed run averages
exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers.training_utils import EMAModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from facestudio.errors import FaceStudioError


def trained_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters of `module` that train, by name, in module order."""
    return {name: p for name, p in module.named_parameters() if p.requires_grad}


class EMA:
    """The average of `module`'s trained parameters with `decay`, stepped after each update."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.parameters = trained_parameters(module)
        self.average = EMAModel(list(self.parameters.values()), decay=decay)

    def step(self) -> None:
        self.average.step(list(self.parameters.values()))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            name: shadow.detach().contiguous().cpu()
            for name, shadow in zip(self.parameters, self.average.shadow_params, strict=True)
        }

    def save(self, path: Path) -> None:
        steps = str(self.average.optimization_step)
        save_file(self.state_dict(), str(path), metadata={"optimization_step": steps})

    def load(self, path: Path) -> None:
        """The average saved by `save` (a file of an earlier version: its weights only)."""
        shadows = dict(zip(self.parameters, self.average.shadow_params, strict=True))
        for name, tensor in by_name(load_file(str(path)), list(self.parameters)).items():
            shadows[name].data.copy_(tensor)
        with safe_open(str(path), framework="pt") as handle:
            steps = (handle.metadata() or {}).get("optimization_step")
        if steps is not None:
            self.average.optimization_step = int(steps)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the module for the duration (validation), then the raw ones."""
        parameters = list(self.parameters.values())
        self.average.store(parameters)
        self.average.copy_to(parameters)
        try:
            yield
        finally:
            self.average.restore(parameters)


def apply_average(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved EMA weights into `module`'s trained parameters (export)."""
    parameters = trained_parameters(module)
    with torch.no_grad():
        for name, tensor in by_name(tensors, list(parameters)).items():
            parameters[name].copy_(tensor)


def by_name(tensors: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """EMA tensors keyed by parameter name; checkpoints of earlier versions numbered them
    `p0, p1, …` in the order of `names`."""
    if names and f"p{len(names) - 1}" in tensors and names[0] not in tensors:
        return {name: tensors[f"p{i}"] for i, name in enumerate(names)}
    missing = [name for name in names if name not in tensors]
    if missing:
        raise FaceStudioError(
            f"the EMA weights lack '{missing[0]}' ({len(missing)} of {len(names)} trained "
            "parameters): they belong to another model; export with --no-ema"
        )
    return {name: tensors[name] for name in names}
