"""The training configuration: a TOML or YAML file, checked key by key on load.

An unknown or mistyped key, or a value of the wrong type, is an error that names the key (and
the closest known key), before anything is built or trained.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from facestudio.errors import FaceStudioError


@dataclass
class ModelConfig:
    """Where the model starts. `init`: "random" (components from `preset` + `sizes` with random
    weights), "pretrained" (`base` SD 1.x, `clip_models`, optional `prior`), or "pipeline" (an
    existing FaceStudio pipeline folder, to continue training)."""

    init: Literal["random", "pretrained", "pipeline"] = "random"
    preset: Literal["tiny", "sd15"] = "tiny"
    sizes: dict = field(default_factory=dict)
    base: str = ""
    clip_models: list = field(default_factory=list)
    prior: str = ""
    pipeline: str = ""
    num_tokens: int = 4
    seed: int = 0


@dataclass
class DataConfig:
    """A folder made by `facestudio prepare`; images are resized to `resolution` if given."""

    path: str = ""
    resolution: int = 0
    num_workers: int = 0


@dataclass
class OptimizationConfig:
    """What is trained and how. `trainable`: "unet" (guidance Linear + the whole U-Net, the
    paper) or "lora" (guidance Linear + LoRA adapters on the U-Net's attention, needs peft).
    `train_style_encoder`: train the style encoder with them (for models built without
    pretrained CLIP weights). `target = "autoencoder"` trains only the VAE (L1 reconstruction
    + `kl_weight`·KL): the first stage of a model built from scratch; `target = "decoder"`
    fine-tunes only its decoder on the frozen encoder's latents (the latent space, and a
    U-Net trained on it, stay valid). `snr_gamma` > 0 weights
    the loss by min(SNR, γ)/SNR (Min-SNR, faster convergence); `face_loss_weight` multiplies
    the loss inside the face box (where identity shows); `cache_latents` encodes every
    training image once with the frozen VAE instead of at every step. `standardize_face` sets
    the guidance's face-embedding statistics from the data when a run starts from a model
    without them (the identity input then learns as fast as the style input)."""

    target: Literal["diffusion", "autoencoder", "decoder"] = "diffusion"
    kl_weight: float = 1e-6
    trainable: Literal["unet", "lora"] = "unet"
    lora_rank: int = 8
    learning_rate: float = 1e-5
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_steps: int = 1000
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    use_ema: bool = False
    ema_decay: float = 0.999
    use_8bit_adam: bool = False
    train_style_encoder: bool = False
    style_dropout: float = 0.64
    face_dropout: float = 0.1
    snr_gamma: float = 0.0
    face_loss_weight: float = 1.0
    cache_latents: bool = False
    standardize_face: bool = True
    seed: int = 0


@dataclass
class CheckpointConfig:
    every_steps: int = 500
    keep_last: int = 3


@dataclass
class ValidationConfig:
    """Images from fixed identities and seeds (the first `samples` training samples) every
    `every_steps` steps (0: never)."""

    every_steps: int = 0
    samples: int = 4
    steps: int = 25
    seed: int = 0


@dataclass
class LoggingConfig:
    every_steps: int = 10
    format: Literal["csv", "tensorboard"] = "csv"


@dataclass
class TrainConfig:
    output_dir: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: OptimizationConfig = field(default_factory=OptimizationConfig)
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a .toml or .yaml/.yml training configuration."""
    path = Path(path)
    if not path.is_file():
        raise FaceStudioError(f"config '{path}' does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise FaceStudioError(f"config '{path}' must be .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise FaceStudioError(
            f"config '{path}' is not valid {path.suffix[1:].upper()}: {exc}"
        ) from None
    config = config_from_dict(data, source=str(path))
    if not config.output_dir:
        raise FaceStudioError(f"config '{path}' needs output_dir (where checkpoints go)")
    if not config.data.path:
        raise FaceStudioError(
            f"config '{path}' needs data.path (a folder made by facestudio prepare)"
        )
    return config


def config_from_dict(data: dict, source: str = "config") -> TrainConfig:
    return _build(TrainConfig, data, "", source)


def _build(cls, data, prefix: str, source: str):
    if not isinstance(data, dict):
        raise FaceStudioError(
            f"'{prefix.rstrip('.') or 'the top level'}' in {source} must be a table of settings"
        )
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = (
                f"; did you mean '{prefix}{close[0]}'?"
                if close
                else f"; known keys: {', '.join(known)}"
            )
            raise FaceStudioError(f"unknown key '{prefix}{key}' in {source}{hint}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            values[key] = _build(kind, value, f"{prefix}{key}.", source)
        else:
            values[key] = _check(value, kind, f"{prefix}{key}", source)
    return cls(**values)


def _check(value, kind, name: str, source: str):
    origin = typing.get_origin(kind)
    if origin is Literal:
        if value not in typing.get_args(kind):
            options = ", ".join(repr(v) for v in typing.get_args(kind))
            raise FaceStudioError(f"'{name}' in {source} must be one of {options}, got {value!r}")
        return value
    expected = {
        int: (int,),
        float: (int, float),
        bool: (bool,),
        str: (str,),
        list: (list,),
        dict: (dict,),
    }
    base = origin if isinstance(origin, type) else kind
    if isinstance(kind, types.UnionType):
        base = typing.get_args(kind)[0]
    allowed = expected.get(base, (object,))
    if (isinstance(value, bool) and base in (int, float)) or not isinstance(value, allowed):
        raise FaceStudioError(
            f"'{name}' in {source} must be {base.__name__}, got {type(value).__name__} {value!r}"
        )
    return float(value) if base is float else value
