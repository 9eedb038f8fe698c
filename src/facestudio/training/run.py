"""A training run's folder: the one owner of its layout, its checkpoints and its export.

    output_dir/
      train_config.json                the configuration of the latest start
      initial_pipeline/                the starting model, frozen parts included (export
        model_settings.json            needs nothing else), and the model settings it was
                                       started with
      checkpoints/checkpoint-NNNNNNNN/ accelerate state (model.safetensors: the objective's
                                       weights; optimizer), ema.safetensors (by parameter
                                       name), trainer_state.json
      log.csv, tensorboard/, validation/

The starting model is written under a temporary name and renamed with its settings record,
so a start either happened completely or left nothing. A run keeps training only under the
model settings it was started with; checkpoints are published by rename, the last good one
never damaged. Export rebuilds the trained module with the objective's own code.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from accelerate import Accelerator
from safetensors.torch import load_file

from facestudio.errors import FaceStudioError
from facestudio.outputs import write_bytes_atomic
from facestudio.pipeline import FaceStudioPipeline
from facestudio.training.config import TrainConfig, config_from_dict
from facestudio.training.ema import EMA, apply_average
from facestudio.training.objectives import Objective

CONFIG = "train_config.json"
INITIAL = "initial_pipeline"
SETTINGS = "model_settings.json"
CHECKPOINTS = "checkpoints"
WEIGHTS = "model.safetensors"  # accelerate's name for the prepared model's weights
EMA_WEIGHTS = "ema.safetensors"
STATE = "trainer_state.json"
RUN_OUTPUTS = (CONFIG, INITIAL, CHECKPOINTS, "log.csv", "tensorboard", "validation")
_CHECKPOINT = re.compile(r"^checkpoint-(\d{8})$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}"


class RunFolder:
    """The folder `output_dir` of a training run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunFolder:
        return cls(Path(checkpoint).resolve().parent.parent)

    @property
    def initial_folder(self) -> Path:
        return self.path / INITIAL

    @property
    def checkpoint_folder(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def validation_folder(self) -> Path:
        return self.path / "validation"

    # -- starting ---------------------------------------------------------------------------

    def started(self) -> bool:
        return (self.initial_folder / "model_index.json").is_file()

    def check(self, config: TrainConfig, restart: bool = False) -> None:
        """Refuse to train `config` here: not a folder, or (unless the run is to `restart`)
        started with other model settings."""
        if self.path.exists() and not self.path.is_dir():
            raise FaceStudioError(f"output_dir '{self.path}' is not a folder; name a folder")
        started = None if restart else self.started_with()
        if started is None:
            return
        current = _plain(config.model_settings())
        differ = [
            k for k in sorted(set(started) | set(current)) if started.get(k) != current.get(k)
        ]
        if differ:
            changes = "; ".join(f"{k} = {started.get(k)!r}, now {current.get(k)!r}" for k in differ)
            raise FaceStudioError(
                f"'{self.path}' was started with other model settings ({changes}); choose a new "
                "output_dir, or run with --restart to start this run over"
            )

    def started_with(self) -> dict | None:
        """The model settings of the run's start (None: not started)."""
        if not self.started():
            return None
        record = self.initial_folder / SETTINGS
        if record.is_file():
            return json.loads(record.read_text())
        # A run started before the record existed: its config file says.
        return _plain(self.config().model_settings()) if (self.path / CONFIG).is_file() else None

    def start(self, config: TrainConfig, build: Callable[[], FaceStudioPipeline]) -> None:
        """Write the starting pipeline `build()` makes, with its settings (once per run)."""
        if not self.started():
            pipeline = build()  # checked and complete before anything is written
            shutil.rmtree(self.initial_folder, ignore_errors=True)  # an incomplete older start
            settings = json.dumps(_plain(config.model_settings()), indent=2)
            _save_whole(pipeline, self.initial_folder, {SETTINGS: settings})
        write_bytes_atomic(self.path / CONFIG, json.dumps(config.to_dict(), indent=2).encode())

    def clear(self) -> None:
        """Remove what training wrote here (`--restart`); other files stay."""
        for name in RUN_OUTPUTS:
            path = self.path / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.is_file():
                path.unlink()

    def config(self) -> TrainConfig:
        path = self.path / CONFIG
        return config_from_dict(json.loads(path.read_text()), source=f"'{path}'")

    def initial_pipeline(self) -> FaceStudioPipeline:
        """The starting pipeline as saved: every process, and export, start from these bytes."""
        return FaceStudioPipeline.from_pretrained(self.initial_folder)

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (unfinished saves are ignored)."""
        if not self.checkpoint_folder.is_dir():
            return []
        found = [
            p
            for p in self.checkpoint_folder.iterdir()
            if p.is_dir() and _CHECKPOINT.match(p.name) and (p / STATE).is_file()
        ]
        return sorted(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)))

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save_checkpoint(
        self, accelerator: Accelerator, step: int, ema: EMA | None, keep_last: int
    ) -> Path:
        """Write a checkpoint under a temporary name, rename it into place when complete, then
        drop the oldest beyond `keep_last`. A failed save leaves the last good one intact."""
        temporary = self.checkpoint_folder / f".{checkpoint_name(step)}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(temporary, ignore_errors=True)
        accelerator.wait_for_everyone()
        try:
            accelerator.save_state(str(temporary))
            # Steps draw no global randomness (each has its own generator), so the pickled RNG
            # states accelerate adds are not needed; without them nothing is unpickled on resume.
            for pickled in temporary.glob("random_states_*.pkl"):
                pickled.unlink()
            if accelerator.is_main_process:
                if ema is not None:
                    ema.save(temporary / EMA_WEIGHTS)
                (temporary / STATE).write_text(json.dumps({"step": step}))
        except OSError as error:
            raise self._save_failed(temporary, step, error) from None
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._publish(temporary, step, keep_last)
        accelerator.wait_for_everyone()
        return self.checkpoint_folder / checkpoint_name(step)

    def resume(self, accelerator: Accelerator, ema: EMA | None) -> int:
        """Load the latest checkpoint into the prepared objects; the step it was saved at."""
        latest = self.latest_checkpoint()
        if latest is None:
            return 0
        accelerator.load_state(str(latest))
        if ema is not None and (latest / EMA_WEIGHTS).is_file():
            ema.load(latest / EMA_WEIGHTS)
        step = json.loads((latest / STATE).read_text())["step"]
        accelerator.print(f"resumed from {latest.name} at step {step}")
        return step

    def _publish(self, temporary: Path, step: int, keep_last: int) -> None:
        final = self.checkpoint_folder / checkpoint_name(step)
        if final.exists():
            shutil.rmtree(final)
        temporary.rename(final)
        complete = self.checkpoints()
        for old in complete[: max(0, len(complete) - keep_last)]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoint_folder.glob(".checkpoint-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)

    def _save_failed(self, temporary: Path, step: int, error: OSError) -> FaceStudioError:
        shutil.rmtree(temporary, ignore_errors=True)
        previous = self.latest_checkpoint()
        kept = (
            f"the last checkpoint, {previous.name}, is intact"
            if previous
            else "no earlier checkpoint exists"
        )
        if error.errno == errno.ENOSPC:
            return FaceStudioError(
                f"no space left on the device while saving checkpoint {step} in "
                f"'{self.checkpoint_folder}'; {kept}; free some space and run again to resume"
            )
        return FaceStudioError(
            f"saving checkpoint {step} failed ({error.strerror or error}); {kept}"
        )

    # -- export -----------------------------------------------------------------------------

    def export(self, checkpoint: str | Path, out: str | Path, use_ema: bool = True) -> Path:
        """A pipeline folder with `checkpoint`'s trained weights (its EMA weights when present
        and `use_ema`), made by the run's objective as in training; written whole or not at all."""
        checkpoint, out = Path(checkpoint), Path(out)
        if not (checkpoint / STATE).is_file() or not (checkpoint / WEIGHTS).is_file():
            raise FaceStudioError(
                f"'{checkpoint}' is not a complete training checkpoint (no {STATE} or {WEIGHTS})"
            )
        if not self.started() or not (self.path / CONFIG).is_file():
            raise FaceStudioError(
                f"'{self.path}' lacks {INITIAL}/ or {CONFIG}; export needs the run folder the "
                "checkpoint belongs to"
            )
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FaceStudioError(f"output folder '{out}' is not empty; choose a new folder")
        config = self.config()
        pipeline = self.initial_pipeline()
        objective = Objective.build(pipeline, config)
        objective.load_state_dict(load_file(str(checkpoint / WEIGHTS)))
        if use_ema and (checkpoint / EMA_WEIGHTS).is_file():
            apply_average(objective, load_file(str(checkpoint / EMA_WEIGHTS)))
        objective.finalize(pipeline)
        if out.exists():
            out.rmdir()  # empty, checked above
        _save_whole(pipeline, out)
        return out


def export_checkpoint(checkpoint: str | Path, out: str | Path, use_ema: bool = True) -> Path:
    """`RunFolder.export` of the run `checkpoint` belongs to (`facestudio export`)."""
    return RunFolder.of_checkpoint(checkpoint).export(checkpoint, out, use_ema)


def _save_whole(pipeline: FaceStudioPipeline, folder: Path, extra: dict | None = None) -> None:
    """Save `pipeline` (and `extra` files) under a temporary name and rename it to `folder`
    when complete: a full disk or a crash leaves no half-written pipeline at `folder`."""
    temporary = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        pipeline.save_pretrained(temporary)
        for name, text in (extra or {}).items():
            (temporary / name).write_text(text)
        temporary.rename(folder)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        reason = "no space left on the device" if error.errno == errno.ENOSPC else error.strerror
        raise FaceStudioError(f"could not write '{folder}': {reason or error}") from None


def _plain(settings: dict) -> dict:
    """Settings as JSON holds them (tuples as lists), so a record and a config compare."""
    return json.loads(json.dumps(settings))
