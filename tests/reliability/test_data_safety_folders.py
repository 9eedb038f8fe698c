"""Run, export and prepare folders: the tool deletes, appends to or replaces only what it made.

A folder is FaceStudio's when it carries the mark the tool writes when it creates it (or, for
folders made before the mark existed, FaceStudio's own layout). Anything else that is not empty
is refused in one line, before any work, and left exactly as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from facestudio.faces import analyzer as analyzer_module
from facestudio.interfaces.cli import main
from tests.conftest import shared_file
from tests.data.conftest import write_prepared
from tests.reliability.helpers import FACE, assert_refused, run

SETTINGS = """
[train]
allow_untrained_frozen = true
batch_size = 8
max_steps = {steps}
use_ema = true
[checkpoints]
every_steps = 1
keep_last = 1
"""


def _config(tmp_path: Path, out: Path, data: Path, steps: int = 1) -> Path:
    path = tmp_path / f"c-{out.name}-{steps}.toml"
    path.write_text(
        f'output_dir = "{out}"\n[data]\npath = "{data}"\n' + SETTINGS.format(steps=steps)
    )
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (links not followed) and what it holds."""
    found = {}
    for entry in sorted(folder.rglob("*")):
        name = str(entry.relative_to(folder))
        if entry.is_symlink():
            found[name] = f"link to {os.readlink(entry)}"
        elif entry.is_file():
            found[name] = hashlib.sha256(entry.read_bytes()).hexdigest()
        else:
            found[name] = "folder"
    return found


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_prepared(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data) -> Path:
    """A real run, one step, trained through the CLI: its folder."""
    work = tmp_path_factory.mktemp("trained")
    out = work / "run"
    assert main(["train", str(_config(work, out, data)), "--cpu"]) == 0
    return out


def _users_folder(path: Path) -> Path:
    """A folder a user made that happens to hold names a run uses."""
    (path / "validation").mkdir(parents=True)
    (path / "validation" / "holiday.png").write_bytes(b"a user's picture")
    (path / "log.csv").write_text("date,weight\n2024-01-01,70\n")
    return path


# -- train --------------------------------------------------------------------------------------


@pytest.mark.parametrize("restart", [False, True])
def test_train_refuses_a_folder_that_never_held_a_run(restart, tmp_path, data, capsys):
    out = _users_folder(tmp_path / "mine")
    before = _snapshot(out)
    flags = ["--restart"] if restart else []
    result = run(capsys, "train", _config(tmp_path, out, data), "--cpu", *flags)
    assert_refused(result, str(out), "not a FaceStudio training run", "new or empty folder")
    assert _snapshot(out) == before


def test_train_refuses_another_kind_of_facestudio_folder(tmp_path, data, capsys):
    """A prepared-data folder is FaceStudio's, but not a run: training there is refused."""
    shutil.copytree(data, tmp_path / "prepared")
    (tmp_path / "prepared" / ".facestudio-folder.json").write_text(
        json.dumps({"format": "facestudio-folder-v1", "kind": "prepare"})
    )
    before = _snapshot(tmp_path / "prepared")
    result = run(capsys, "train", _config(tmp_path, tmp_path / "prepared", data), "--cpu")
    assert_refused(result, "prepared-data folder", "not a training run")
    assert _snapshot(tmp_path / "prepared") == before


def test_a_run_resumes_and_restarts_in_its_own_folder(tmp_path, data, capsys):
    out = tmp_path / "run"
    assert run(capsys, "train", _config(tmp_path, out, data), "--cpu")[0] == 0
    assert (out / ".facestudio-folder.json").is_file()
    assert run(capsys, "train", _config(tmp_path, out, data, steps=2), "--cpu")[0] == 0
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-00000002"]
    (out / "notes.txt").write_text("my notes on this run")  # a user's file in a run stays
    assert run(capsys, "train", _config(tmp_path, out, data), "--cpu", "--restart")[0] == 0
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-00000001"]
    assert (out / "notes.txt").read_text() == "my notes on this run"


def test_a_run_made_before_the_mark_is_recognised_and_resumes(tmp_path, trained, data, capsys):
    out = tmp_path / "old-run"
    shutil.copytree(trained, out)
    (out / ".facestudio-folder.json").unlink()  # as an older FaceStudio left it
    assert run(capsys, "train", _config(tmp_path, out, data, steps=2), "--cpu")[0] == 0
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-00000002"]
    assert (out / ".facestudio-folder.json").is_file()


@pytest.mark.parametrize("restart", [False, True])
def test_a_link_among_a_runs_outputs_is_refused(restart, tmp_path, trained, data, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("a user's file")
    shutil.rmtree(out / "validation", ignore_errors=True)
    os.symlink(tmp_path / "elsewhere", out / "validation")
    flags = ["--restart"] if restart else []
    result = run(capsys, "train", _config(tmp_path, out, data, steps=2), "--cpu", *flags)
    assert_refused(result, "validation", "symbolic link")
    assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "a user's file"


def _lie_in_header(path: Path) -> None:
    """Keep the tensors but declare the first one far larger than the file."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**9]
    header[name]["data_offsets"] = [0, 4 * 10**9]
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])


def test_a_checkpoint_with_a_lying_header_stops_a_resume_in_one_line(
    tmp_path, trained, data, capsys
):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    _lie_in_header(out / "checkpoints" / "checkpoint-00000001" / "model.safetensors")
    result = run(capsys, "train", _config(tmp_path, out, data, steps=2), "--cpu")
    assert_refused(result, "checkpoint-00000001", "damaged")


# -- export -------------------------------------------------------------------------------------


def _checkpoint(run_folder: Path) -> Path:
    return run_folder / "checkpoints" / "checkpoint-00000001"


def test_export_keeps_a_users_file_named_like_its_temporary(tmp_path, trained, capsys):
    mine = tmp_path / ".model.tmp"
    mine.mkdir()
    (mine / "draft.txt").write_text("a user's draft")
    assert run(capsys, "export", _checkpoint(trained), "-o", tmp_path / "model")[0] == 0
    assert (mine / "draft.txt").read_text() == "a user's draft"
    assert (tmp_path / "model" / "model_index.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.tmp", "model"]


def _link_to_empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "empty", tmp_path / "model")
    return tmp_path / "model"


def _dangling_link(tmp_path: Path) -> Path:
    os.symlink(tmp_path / "nowhere", tmp_path / "model")
    return tmp_path / "model"


def _link_to_users_folder(tmp_path: Path) -> Path:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"a photo")
    os.symlink(tmp_path / "photos", tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize("make", [_link_to_empty, _dangling_link, _link_to_users_folder])
def test_export_through_a_link_is_one_line(make, tmp_path, trained, capsys):
    out = make(tmp_path)
    before = _snapshot(tmp_path)
    result = run(capsys, "export", _checkpoint(trained), "-o", out)
    assert_refused(result, str(out), "symbolic link")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("weights", ["model.safetensors", "ema.safetensors"])
def test_export_of_a_checkpoint_with_a_lying_header_is_one_line(weights, tmp_path, trained, capsys):
    shutil.copytree(trained, tmp_path / "run")
    checkpoint = _checkpoint(tmp_path / "run")
    if not (checkpoint / weights).is_file():
        pytest.skip(f"this run wrote no {weights}")
    _lie_in_header(checkpoint / weights)
    result = run(capsys, "export", checkpoint, "-o", tmp_path / "model")
    assert_refused(result, weights, "damaged")
    assert not (tmp_path / "model").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# -- prepare ------------------------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.jpg").write_bytes(shared_file(FACE).read_bytes())
    return folder


@pytest.fixture
def no_face_models(monkeypatch):
    def refuse(config):
        raise AssertionError("the face models were loaded before the output was checked")

    monkeypatch.setattr(analyzer_module, "build_backend", refuse)


def test_prepare_refuses_a_folder_with_a_users_index(tmp_path, photos, capsys, no_face_models):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.json").write_text('{"my": "index of photos"}')
    before = _snapshot(out)
    result = run(capsys, "prepare", photos, "--out", out)
    assert_refused(result, str(out), "not a FaceStudio prepared-data folder", "new or empty")
    assert _snapshot(out) == before


def test_prepare_refuses_its_own_source_and_a_run_folder(
    tmp_path, photos, trained, capsys, no_face_models
):
    assert_refused(run(capsys, "prepare", photos, "--out", photos), "not a FaceStudio")
    shutil.copytree(trained, tmp_path / "run")
    before = _snapshot(tmp_path / "run")
    result = run(capsys, "prepare", photos, "--out", tmp_path / "run")
    assert_refused(result, "training run folder", "not a prepared-data")
    assert _snapshot(tmp_path / "run") == before


def _prepare(capsys, photos: Path, out: Path) -> tuple[int, str, str]:
    return run(capsys, "prepare", photos, "--out", out, "--resolution", "64", "--shard-size", "1")


@pytest.mark.parametrize(
    "damage",
    ["truncated report", "report is a folder", "report without its shard", "truncated shard"],
)
def test_an_interrupted_prepare_resumes_over_damaged_shards(damage, tmp_path, photos, capsys):
    out = tmp_path / "out"
    assert _prepare(capsys, photos, out)[0] == 0
    index = json.loads((out / "index.json").read_text())
    report, shard = out / "shard-00001.json", out / "shard-00001.tar"
    if damage == "truncated report":
        report.write_text('{"shard": 1, "ke')
    elif damage == "report is a folder":
        report.unlink()
        report.mkdir()
    elif damage == "report without its shard":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:700])
    (out / "index.json").unlink()  # as an interrupted run leaves it
    code, _, err = _prepare(capsys, photos, out)
    if damage == "report is a folder":  # not a file the tool made: named, and left
        assert_refused((code, "", err), "shard-00001.json", "folder")
        assert report.is_dir()
        return
    assert code == 0 and "Traceback" not in err, err
    assert json.loads((out / "index.json").read_text()) == index


def test_a_prepared_folder_made_before_the_mark_is_resumed(tmp_path, photos, capsys):
    out = tmp_path / "out"
    assert _prepare(capsys, photos, out)[0] == 0
    (out / ".facestudio-folder.json").unlink()
    assert _prepare(capsys, photos, out)[0] == 0
    assert (out / ".facestudio-folder.json").is_file()
