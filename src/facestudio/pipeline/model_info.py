"""What a model can do, read from its config files without loading a weight or importing torch.

Front ends read a `ModelInfo` first and validate a request against it, so that a prompt given
to a model without a text prior, a size the model cannot make, or a model folder with absurd
or hostile configs is refused in milliseconds, before 10–20 s of imports and weight loading.
The same `ModelInfo` comes from a loaded pipeline (`from_pipeline`), so both paths run one
validation.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from facestudio import BUNDLED_MODEL
from facestudio.errors import FaceStudioError, ModelLoadError
from facestudio.pipeline import limits
from facestudio.pipeline.sizes import SizePolicy
from facestudio.structured_files import quote, read_structured_file

BUNDLED_NAME = "bundled"
"""The name that means the small model shipped inside the package."""

BUNDLED_MODEL_DIR = Path(BUNDLED_MODEL)

ALLOWED_LIBRARIES = ("diffusers", "transformers", "facestudio")
"""Packages a FaceStudio pipeline's components may come from. A model_index.json naming any
other module is refused before anything is imported from it."""

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
"""Checkpoint formats that can run code when loaded: never read."""

MAX_CONFIG_BYTES = 1024 * 1024
"""Config JSON files are a few kB; a bigger one is not a config."""


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """`None` or "bundled" → the bundled model's folder; anything else unchanged.

    "bundled" always means the shipped model; write "./bundled" for a folder of that name.
    """
    if name_or_path is None or str(name_or_path) == BUNDLED_NAME:
        if not (BUNDLED_MODEL_DIR / "model_index.json").is_file():
            raise ModelLoadError(
                f"no bundled model in '{BUNDLED_MODEL_DIR}' (a source checkout without its "
                "weights?); give a FaceStudio pipeline folder"
            )
        return str(BUNDLED_MODEL_DIR)
    return os.fspath(name_or_path)


def public_model_name(name_or_path: str | os.PathLike) -> str:
    """How metadata names a model: a folder's own name (never its absolute path), a hub id
    as is, "bundled" for the shipped model."""
    text = os.fspath(name_or_path)
    if not text:
        return ""  # built in memory, never saved
    path = Path(text)
    if path.is_dir():
        if path.resolve() == BUNDLED_MODEL_DIR:
            return BUNDLED_NAME
        return path.resolve().name
    return text


@dataclass(frozen=True)
class ModelInfo:
    """The capabilities of a FaceStudio model, as its configs declare them."""

    name: str
    has_text_prior: bool
    has_style_encoder: bool
    sample_size: int  # latent side of the U-Net
    vae_factor: int  # pixels per latent pixel
    in_channels: int
    num_train_timesteps: int
    face_dim: int
    num_tokens: int
    prior_num_train_timesteps: int | None = None
    style_faces: str = "keep"
    face_analysis: dict = field(default_factory=dict)
    sizes: SizePolicy | None = None  # the sizes it declares it makes well (`sizes` module)

    @property
    def native_side(self) -> int:
        """The side (pixels) the model makes by default and was trained at."""
        return self.sample_size * self.vae_factor

    @property
    def max_side(self) -> int:
        return limits.max_side_for(self.native_side)

    @property
    def max_steps(self) -> int:
        return limits.max_steps_for(self.num_train_timesteps)

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> ModelInfo:
        """Read model_index.json and the component configs of a pipeline folder."""
        folder = Path(folder)
        index = _read_json(folder / "model_index.json", folder)
        _check_modules(index, folder)
        _check_component_configs(index, folder)

        def component(name: str, file: str = "config.json") -> dict | None:
            entry = index.get(name)
            if not isinstance(entry, list | tuple) or not entry or entry[0] is None:
                return None
            return _read_json(folder / name / file, folder)

        unet = component("unet") or _missing(folder, "unet")
        vae = component("vae") or _missing(folder, "vae")
        vae_factor = 2 ** (len(_list(vae, "block_out_channels", folder, "vae")) - 1)
        scheduler = component("scheduler", "scheduler_config.json") or _missing(folder, "scheduler")
        guidance = component("guidance") or _missing(folder, "guidance")
        prior_scheduler = component("prior_scheduler", "scheduler_config.json")
        has_prior = all(component_named(index, n) for n in ("prior", "text_encoder", "tokenizer"))
        info = cls(
            name=public_model_name(folder),
            has_text_prior=has_prior,
            has_style_encoder=component_named(index, "style_encoder"),
            sample_size=_int(unet, "sample_size", folder, "unet"),
            vae_factor=vae_factor,
            in_channels=_int(unet, "in_channels", folder, "unet"),
            num_train_timesteps=_int(scheduler, "num_train_timesteps", folder, "scheduler"),
            face_dim=_int(guidance, "face_dim", folder, "guidance"),
            num_tokens=_int(guidance, "num_tokens", folder, "guidance"),
            prior_num_train_timesteps=(
                _int(prior_scheduler, "num_train_timesteps", folder, "prior_scheduler")
                if has_prior and prior_scheduler
                else None
            ),
            style_faces=str(index.get("style_faces", "keep")),
            face_analysis=dict(index.get("face_analysis") or {}),
            sizes=SizePolicy.from_config(
                index.get("sizes"), vae_factor, f"{folder}/model_index.json"
            ),
        )
        _check_sizes(info, unet, vae, folder)
        return info

    @classmethod
    def from_pipeline(cls, pipeline) -> ModelInfo:
        """The same information from a loaded `FaceStudioPipeline` (its module configs)."""
        prior_scheduler = getattr(pipeline, "prior_scheduler", None)
        has_prior = all(
            getattr(pipeline, n, None) is not None for n in ("prior", "text_encoder", "tokenizer")
        )
        return cls(
            name=public_model_name(str(getattr(pipeline.config, "_name_or_path", "") or "")),
            has_text_prior=has_prior,
            has_style_encoder=pipeline.style_encoder is not None,
            sample_size=int(pipeline.unet.config.sample_size),
            vae_factor=int(pipeline.vae_scale_factor),
            in_channels=int(pipeline.unet.config.in_channels),
            num_train_timesteps=int(pipeline.scheduler.config.num_train_timesteps),
            face_dim=int(pipeline.guidance.config.face_dim),
            num_tokens=int(pipeline.guidance.config.num_tokens),
            prior_num_train_timesteps=(
                int(prior_scheduler.config.num_train_timesteps)
                if has_prior and prior_scheduler is not None
                else None
            ),
            style_faces=str(pipeline.config.style_faces),
            face_analysis=dict(pipeline.config.face_analysis),
            sizes=SizePolicy.from_config(
                pipeline.config.get("sizes"), int(pipeline.vae_scale_factor), "the pipeline"
            ),
        )


def read_model_info(name_or_path: str | os.PathLike | None) -> ModelInfo | None:
    """`ModelInfo` of a local folder (or the bundled model); None for a hub id, whose configs
    are only read when it loads."""
    resolved = Path(resolve_model(name_or_path))
    if resolved.is_dir():
        return ModelInfo.from_folder(resolved)
    if resolved.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"'{resolved}' is a pickle checkpoint, which can run arbitrary code and is never "
            "loaded; convert it to safetensors in a pipeline folder"
        )
    if resolved.exists():
        raise ModelLoadError(
            f"'{resolved}' is a file; give a FaceStudio pipeline folder (with model_index.json)"
        )
    if len(str(resolved).split("/")) != 2 or str(resolved).startswith((".", "/", "~")):
        raise ModelLoadError(
            f"model '{name_or_path}' is neither a folder nor a hub id (owner/name); give a "
            "FaceStudio pipeline folder, a hub id or 'bundled'"
        )
    return None


def component_named(index: dict, name: str) -> bool:
    entry = index.get(name)
    return isinstance(entry, list | tuple) and len(entry) == 2 and entry[0] is not None


def _read_json(path: Path, folder: Path) -> dict:
    """A config JSON of the model, through the bounded reader (size, nesting, numbers)."""
    if not path.is_file():
        what = "is not a pipeline folder: it has no" if path.name == "model_index.json" else "lacks"
        raise ModelLoadError(f"{quote(folder)} {what} {path.relative_to(folder)}")
    try:
        data = read_structured_file(path, "model config", "JSON", MAX_CONFIG_BYTES)
    except FaceStudioError as exc:
        raise ModelLoadError(f"{exc}; re-export the model") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{quote(path)} is not a JSON object; re-export the model")
    return data


def _check_component_configs(index: dict, folder: Path) -> None:
    """Every component's config JSON read once through the bounded reader, so that the
    libraries that read them again while loading (diffusers, transformers) get sane files."""
    for name, entry in index.items():
        if not isinstance(entry, list | tuple) or not entry or entry[0] is None:
            continue
        component = folder / name
        if name == component.name and not name.startswith((".", "_")) and component.is_dir():
            for path in sorted(component.glob("*config.json")):
                _read_json(path, folder)


def _check_modules(index: dict, folder: Path) -> None:
    """Every component's library is one we load from and is installed; nothing is imported."""
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list | tuple) or len(entry) != 2:
            continue
        library = entry[0]
        if library is None:
            continue
        if not isinstance(library, str) or not library:
            raise ModelLoadError(f"{folder}/model_index.json: component '{name}' is malformed")
        if library.split(".")[0] not in ALLOWED_LIBRARIES:
            if _importable(library):
                raise ModelLoadError(
                    f"{folder}/model_index.json: component '{name}' comes from '{library}'; "
                    f"FaceStudio loads components only from {', '.join(ALLOWED_LIBRARIES)}"
                )
            raise ModelLoadError(
                f"{folder}/model_index.json: component '{name}' needs module '{library}', which "
                "is not installed; this is not a FaceStudio model or it needs another package"
            )
        if not _importable(library):
            raise ModelLoadError(
                f"{folder}/model_index.json: component '{name}' needs module '{library}', which "
                "does not exist in this version; update facestudio or re-export the model"
            )


def _importable(module: str) -> bool:
    """Whether `module` can be found, without importing it or its parent packages (importing
    `facestudio.model` alone costs seconds of torch and diffusers)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    name = top
    for part in rest:
        if spec is None or not spec.submodule_search_locations:
            return False
        name = f"{name}.{part}"
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    return spec is not None


def _check_sizes(info: ModelInfo, unet: dict, vae: dict, folder: Path) -> None:
    """Refuse configs whose sizes would allocate without bound, before anything is built."""
    if info.native_side > limits.MAX_SIDE or info.sample_size <= 0:
        raise ModelLoadError(
            f"'{folder}': unet sample_size {info.sample_size} means {info.native_side}-pixel "
            f"images, outside 1..{limits.MAX_SIDE}; the config is damaged"
        )
    if not 0 < info.in_channels <= limits.MAX_LATENT_CHANNELS:
        raise ModelLoadError(
            f"'{folder}': unet in_channels {info.in_channels} is outside "
            f"1..{limits.MAX_LATENT_CHANNELS}; the config is damaged"
        )
    if not 0 < info.num_train_timesteps <= 100_000:
        raise ModelLoadError(
            f"'{folder}': scheduler num_train_timesteps {info.num_train_timesteps} is not a "
            "plausible value; the config is damaged"
        )
    widths = [
        *_list(unet, "block_out_channels", folder, "unet"),
        *_list(vae, "block_out_channels", folder, "vae"),
    ]
    cross = unet.get("cross_attention_dim")
    widths += cross if isinstance(cross, list) else [cross] if cross is not None else []
    for width in widths:
        if not isinstance(width, int) or not 0 < width <= limits.MAX_MODEL_CHANNELS:
            raise ModelLoadError(
                f"'{folder}': a layer width of {width} is outside 1..{limits.MAX_MODEL_CHANNELS}; "
                "the config is damaged"
            )


def _int(config: dict, key: str, folder: Path, component: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelLoadError(f"'{folder}/{component}': config has no whole number '{key}'")
    if value != int(value):
        raise ModelLoadError(f"'{folder}/{component}': '{key}' {value} is not a whole number")
    return int(value)


def _list(config: dict, key: str, folder: Path, component: str) -> list:
    value = config.get(key)
    if not isinstance(value, list) or not value or len(value) > 16:
        raise ModelLoadError(f"'{folder}/{component}': config has no usable list '{key}'")
    return value


def _missing(folder: Path, name: str):
    raise ModelLoadError(f"'{folder}' has no '{name}' component in model_index.json")
