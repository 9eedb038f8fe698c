"""Training's closing line compares mean losses over logging intervals, not two single
batches (whose losses swing with their timesteps and noise)."""

from __future__ import annotations

import csv
import math
import re

import pytest

from facestudio.interfaces.cli import main
from facestudio.training.log import LossWindows


def test_windows_hold_the_first_and_the_latest_steps():
    windows = LossWindows(3)
    assert windows.describe() == "no steps trained" and math.isnan(windows.first_mean)
    for step, loss in enumerate([9.0, 3.0, 3.0, 1.0, 2.0, 3.0, 1.0], start=11):
        windows.add(step, loss)
    assert windows.first_mean == pytest.approx(5.0)  # steps 11-13
    assert windows.latest_mean == pytest.approx(2.0)  # steps 15-17
    assert windows.describe() == "mean loss 5.0000 over steps 11-13 -> 2.0000 over steps 15-17"


def test_the_closing_line_reports_the_logged_interval_means(
    tmp_path, eight_photos_prepared, capsys
):
    config = tmp_path / "c.toml"
    config.write_text(
        f'output_dir = "{tmp_path / "run"}"\n[data]\npath = "{eight_photos_prepared}"\n'
        "[train]\nallow_untrained_frozen = true\nbatch_size = 4\nmax_steps = 6\n"
        "[checkpoints]\nevery_steps = 6\n[logging]\nevery_steps = 3\n"
    )
    assert main(["train", str(config), "--cpu"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.search(r"mean loss ([\d.]+) over steps 1-3 -> ([\d.]+) over steps 4-6", line)
    assert found, line
    with open(tmp_path / "run" / "log.csv") as rows:
        logged = [float(row["loss"]) for row in csv.DictReader(rows)]
    assert len(logged) == 2
    assert [float(found.group(1)), float(found.group(2))] == pytest.approx(logged, abs=1e-4)
