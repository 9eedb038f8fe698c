"""The training configuration: a TOML or YAML file, checked key by key on load.

An unknown or mistyped key, a value of the wrong type or out of its range (each field declares
it), or a missing required setting is an error that names the key (and the closest known key),
before anything is built, written or trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from facestudio.configuration import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Range,
    Seed,
    check_dataclass,
    load_dataclass,
)
from facestudio.errors import FaceStudioError
from facestudio.model.components import ComponentSizes
from facestudio.pipeline.model_info import resolve_model
from facestudio.structured_files import quote, read_structured_file

MAX_VALIDATION_STEPS = 1000
"""The scheduler's training timesteps: validation samples with at most this many steps, and
timestep settings lie below it."""


@dataclass
class ModelConfig:
    """Where the model starts. `init`: "random" (components from `preset` + `sizes` with random
    weights), "pretrained" (`base` SD 1.x, `clip_models`, optional `prior`), or "pipeline" (an
    existing FaceStudio pipeline folder, to continue training). `vae` (init = "random" only):
    the trained autoencoder of a pipeline folder, or "bundled", in place of the random one, so
    that the frozen latent space already decodes to images; the random U-Net is shaped for it."""

    init: Literal["random", "pretrained", "pipeline"] = "random"
    preset: Literal["tiny", "sd15"] = "tiny"
    sizes: dict = field(default_factory=dict)
    vae: str = ""
    base: str = ""
    clip_models: list = field(default_factory=list)
    prior: str = ""
    pipeline: str = ""
    num_tokens: PositiveInt = 4
    seed: Seed = 0


@dataclass
class DataConfig:
    """A folder made by `facestudio prepare`; images are resized to `resolution` if given."""

    path: str = ""
    resolution: NonNegativeInt = 0
    num_workers: NonNegativeInt = 0


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
    without them (the identity input then learns as fast as the style input).
    `identity_loss_weight` > 0 adds the identity loss (training/identity_loss.py): 1 − cosine
    between dlib's embedding of the decoded image (the one-step clean estimate, for samples
    noised at most `identity_max_timestep`) and the conditioning embedding, on at most
    `identity_max_samples` faces per batch; for the decoder target, on its reconstructions.
    `pair_probability` > 0 makes that share of the steps two-person ones: each portrait's
    centre half beside another's, each half routed to its own person's tokens
    (training/pairs.py; the identity loss skips those steps). `paired_identity_probability`
    > 0 conditions that share of samples on another photo of the same person, where the data
    knows people (training/paired_identity.py). `stylize_probability` > 0 replaces that share
    of samples by their stylised twin: portrait and style input through the same stylisation,
    identity from the photo (training/stylize.py). `allow_untrained_frozen` lets a run with
    `init = "random"` keep a frozen part (the autoencoder, the style encoder) at random weights:
    such a run measures speed or exercises the code, but can never make an image."""

    target: str = "diffusion"  # an Objective's name (training/objectives.py)
    kl_weight: NonNegativeFloat = 1e-6
    trainable: Literal["unet", "lora"] = "unet"
    lora_rank: PositiveInt = 8
    learning_rate: PositiveFloat = 1e-5
    batch_size: PositiveInt = 8
    gradient_accumulation_steps: PositiveInt = 1
    max_steps: PositiveInt = 1000
    max_grad_norm: NonNegativeFloat = 1.0  # 0: no clipping
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    use_ema: bool = False
    ema_decay: Probability = 0.999
    use_8bit_adam: bool = False
    train_style_encoder: bool = False
    style_dropout: Probability = 0.64
    face_dropout: Probability = 0.1
    snr_gamma: NonNegativeFloat = 0.0  # 0: plain MSE
    face_loss_weight: NonNegativeFloat = 1.0
    identity_loss_weight: NonNegativeFloat = 0.0  # 0: no identity loss
    identity_max_timestep: Annotated[int, Range(0, MAX_VALIDATION_STEPS - 1)] = 400
    identity_max_samples: PositiveInt = 8
    pair_probability: Probability = 0.0  # 0: one-person samples only
    paired_identity_probability: Probability = 0.0  # 0: always the photo's own embedding
    stylize_probability: Probability = 0.0  # 0: photos only
    cache_latents: bool = False
    standardize_face: bool = True
    allow_untrained_frozen: bool = False
    seed: Seed = 0


@dataclass
class CheckpointConfig:
    every_steps: PositiveInt = 500
    keep_last: PositiveInt = 3


@dataclass
class ValidationConfig:
    """Images from fixed identities and seeds (the first `samples` training samples) every
    `every_steps` steps (0: never)."""

    every_steps: NonNegativeInt = 0
    samples: PositiveInt = 4
    steps: Annotated[int, Range(1, MAX_VALIDATION_STEPS)] = 25
    seed: Seed = 0


@dataclass
class LoggingConfig:
    every_steps: PositiveInt = 10
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

    def model_settings(self) -> dict:
        """The settings that decide the trained model's shape and start (dotted keys): a run
        folder keeps training only under the ones it was started with."""
        settings = {f"model.{key}": value for key, value in dataclasses.asdict(self.model).items()}
        for key in MODEL_TRAIN_SETTINGS:
            settings[f"train.{key}"] = getattr(self.train, key)
        return settings


MODEL_TRAIN_SETTINGS = (
    "target",
    "trainable",
    "lora_rank",
    "train_style_encoder",
    "standardize_face",
)
"""`[train]` keys that change what is trained (beside all of `[model]`)."""


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a .toml or .yaml/.yml training configuration."""
    config = load_dataclass(path, TrainConfig, what="config")
    return check_config(config, quote(path))


def config_from_dict(data: dict, source: str = "config") -> TrainConfig:
    """A configuration from a dict (train_config.json, tests), keys and values checked."""
    return load_dataclass(data, TrainConfig, name=source)


def check_config(config: TrainConfig, source: str = "the config") -> TrainConfig:
    """Every value in range and every setting a run needs present; raises before any work."""
    check_dataclass(config, source)
    if not config.output_dir:
        raise FaceStudioError(f"config {source} needs output_dir (where checkpoints go)")
    if not config.data.path:
        raise FaceStudioError(
            f"config {source} needs data.path (a folder made by facestudio prepare)"
        )
    model = config.model
    if model.init == "pretrained" and not model.base:
        raise FaceStudioError(f"model.init = 'pretrained' in {source} needs model.base")
    if model.init == "pipeline" and not model.pipeline:
        raise FaceStudioError(f"model.init = 'pipeline' in {source} needs model.pipeline")
    if model.vae and model.init != "random":
        raise FaceStudioError(
            f"model.vae in {source} replaces the random autoencoder of init = 'random'; with "
            f"init = {model.init!r} the autoencoder comes from the model, so remove model.vae"
        )
    if model.init == "random":
        component_sizes(model, source)
    return config


def component_sizes(model: ModelConfig, source: str = "the config") -> ComponentSizes:
    """`model.preset` with `model.num_tokens` and `model.sizes` over it; every size a positive
    whole number."""
    preset = ComponentSizes.tiny() if model.preset == "tiny" else ComponentSizes.sd15()
    autoencoder = autoencoder_shape(model.vae, source) if model.vae else {}
    sizes = load_dataclass(
        {
            **dataclasses.asdict(preset),
            "num_tokens": model.num_tokens,
            **model.sizes,
            **autoencoder,
        },
        ComponentSizes,
        name=source,
        prefix="model.sizes.",
    )
    for f in dataclasses.fields(sizes):
        value = getattr(sizes, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(type(v) is int and v < 1 for v in values):
            raise FaceStudioError(f"'model.sizes.{f.name}' in {source} must be >= 1, got {value!r}")
    return sizes


def autoencoder_shape(vae: str, source: str = "the config") -> dict:
    """The sizes the random components take from the autoencoder `model.vae` names (a pipeline
    folder, or "bundled"), read from its config without loading a weight: the U-Net must work
    in its latent space."""
    path = Path(resolve_model(vae)) / "vae" / "config.json"

    def refused(reason: str) -> FaceStudioError:
        return FaceStudioError(
            f"model.vae = {vae!r} in {source} needs a pipeline folder with an autoencoder "
            f"('{path}': {reason}); give an exported model folder or \"bundled\""
        )

    if not path.is_file():
        raise refused("it does not exist")
    shape = read_structured_file(path, "model.vae's autoencoder config", kind="JSON")
    try:
        return {
            "latent_channels": int(shape["latent_channels"]),
            "vae_channels": tuple(int(c) for c in shape["block_out_channels"]),
            "vae_norm_groups": int(shape.get("norm_num_groups", 1)),
        }
    except (AttributeError, KeyError, TypeError, ValueError):
        raise refused("not an autoencoder config") from None
