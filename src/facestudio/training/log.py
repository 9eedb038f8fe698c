"""Loss and throughput per logging interval: `log.csv` in the run folder, and TensorBoard when
the config's `logging.format` chooses it (main process only)."""

from __future__ import annotations

import csv
import resource
from pathlib import Path

import torch

from facestudio.errors import FaceStudioError

COLUMNS = ["step", "epoch", "loss", "samples_per_s", "seconds", "peak_memory_mb"]


class TrainingLog:
    def __init__(self, folder: Path, tensorboard: bool, active: bool) -> None:
        self.active = active
        self.writer = None
        if not active:
            return
        path = folder / "log.csv"
        fresh = not path.exists()
        self.file = open(path, "a", newline="")  # noqa: SIM115 - open for the whole run
        self.csv = csv.writer(self.file)
        if fresh:
            self.csv.writerow(COLUMNS)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional: the train extra
            except ImportError:
                raise FaceStudioError(
                    "logging.format = 'tensorboard' needs tensorboard; run: pip install tensorboard"
                ) from None
            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def write(
        self, step: int, epoch: int, loss: float, samples_per_s: float, seconds: float
    ) -> None:
        if not self.active:
            return
        peak = (
            torch.cuda.max_memory_allocated() / 2**20
            if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        self.csv.writerow(
            [step, epoch, f"{loss:.6f}", f"{samples_per_s:.2f}", f"{seconds:.1f}", f"{peak:.0f}"]
        )
        self.file.flush()
        if self.writer is not None:
            self.writer.add_scalar("loss", loss, step)
            self.writer.add_scalar("samples_per_s", samples_per_s, step)

    def close(self) -> None:
        if self.active:
            self.file.close()
            if self.writer is not None:
                self.writer.close()


def append_csv(path: Path, header: list[str], row: list) -> None:
    """Append `row` to a CSV file of the run, writing `header` first when the file is new."""
    fresh = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if fresh:
            writer.writerow(header)
        writer.writerow(row)
