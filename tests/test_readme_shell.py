"""The README's shell lines work as printed from a fresh clone (beside ../shared, as the tests
expect), so that its commands chain and cannot rot.

Every line of every ```bash block is checked: it parses; a `facestudio` line parses with the
real command-line parser (subcommand and flags exist); every file or folder it reads exists
in the clone or is made by an earlier line; a training config reads the data an earlier
`prepare` line makes, at the size the model trains at, and the `export` line names a
checkpoint that run writes; scripts, benchmarks and pip extras exist. The fast lines (face
analysis, generation with the bundled model, inspect) then run in a temporary clone, in order,
on real photos named as the README names them (as tests/test_readme.py does for its Python);
the long ones (setup, the test suite, prepare, training, evaluation, serving, benchmarks) and
generation with other models (tests/test_readme.py runs the same in Python) are checked but
not run.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from facestudio import BUNDLED_MODEL
from facestudio.interfaces.cli import build_parser, main
from facestudio.training.config import component_sizes, load_config
from facestudio.training.run import checkpoint_name
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PHOTOS = {  # the file names the README uses for your photos → real photos
    "photo.jpg": "data/deepface/id04/img16.jpg",
    "me.jpg": "data/deepface/id04/img16.jpg",
    "me1.jpg": "data/deepface/id04/img16.jpg",
    "me2.jpg": "data/deepface/id04/img17.jpg",
    "me3.jpg": "data/deepface/id04/img59.jpg",
    "friend.jpg": "data/deepface/id05/img13.jpg",
    "a.jpg": "data/deepface/id04/img59.jpg",
    "b.jpg": "data/deepface/id05/img14.jpg",
    "group.jpg": "data/groups/couple.jpg",
    "painting.jpg": "data/groups/two_people.jpg",
}
YOURS = {*PHOTOS, "DIR", "bench.yaml"}  # placeholders: your photos, your model, your benchmark
FAST = {"faces", "generate", "inspect"}  # facestudio subcommands run here (seconds each)
CHECKED_ONLY = {"--model"}  # generation with another model: checked (test_readme runs its twin)
OUTPUT_FLAGS = {"-o", "--out", "--output", "--json", "--draw"}
INPUT_SUFFIXES = (".jpg", ".png", ".toml", ".yaml", ".yml", ".json", ".onnx", ".tar", ".txt", ".py")


def shell_lines() -> list[str]:
    """Each command of the README's bash blocks, continuation lines joined."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL):
        lines += [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


@dataclass
class Clone:
    """A fresh clone in a temporary folder: the repository's files beside ../shared, your
    photos in its root; what the README's lines made so far, and the runs they start."""

    root: Path
    made: dict[str, argparse.Namespace] = field(default_factory=dict)  # path -> its line's args
    runs: dict[str, str] = field(default_factory=dict)  # a run's output_dir -> its config
    variables: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return Path(os.path.normpath(self.root / name))

    def exists(self, name: str) -> bool:
        matches = glob.glob(str(self.root / name)) if "*" in name else [str(self.root / name)]
        return self.made_by(name) is not None or any(Path(m).exists() for m in matches)

    def made_by(self, name: str) -> argparse.Namespace | None:
        target = self.path(name)
        for path, args in self.made.items():
            if target == Path(path) or Path(path) in target.parents:
                return args
        return None


@pytest.fixture
def clone(tmp_path, monkeypatch):
    checkout = tmp_path / "main"
    checkout.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in {"outputs", "__pycache__"}:
            (checkout / entry.name).symlink_to(entry)
    (tmp_path / "shared").symlink_to(shared_file("data/MANIFEST.json").parents[1])
    for name, relative in PHOTOS.items():
        shutil.copy(shared_file(relative), checkout / name)
    (checkout / "DIR").symlink_to(BUNDLED_MODEL)
    (checkout / "bench.yaml").write_text(
        json.dumps(
            {
                "identities": [
                    {"name": "me", "condition": ["me1.jpg"], "reference": ["me2.jpg"]},
                    {"name": "friend", "condition": ["friend.jpg"], "reference": ["b.jpg"]},
                ]
            }
        )
    )
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("HOME", str(tmp_path))  # the face cache lands here
    monkeypatch.delenv("FACESTUDIO_CACHE", raising=False)
    return Clone(checkout)


def test_the_readme_has_shell_lines_for_each_job():
    commands = " ".join(shell_lines())
    for job in ("scripts/demo.sh", "facestudio faces", "facestudio generate", "facestudio train"):
        assert job in commands


@pytest.mark.slow
def test_each_shell_line_is_checked_and_the_fast_ones_run(clone):
    ran = []
    for line in shell_lines():
        argv = _words(line, clone)
        if not argv:
            continue
        if re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0]) and len(argv) == 1:
            name, value = argv[0].split("=", 1)
            clone.variables[name] = value
            continue
        check = CHECKS.get(Path(argv[0]).name if argv[0].endswith("python") else argv[0])
        assert check is not None, f"README line with an unknown command: {line}"
        if check(argv, clone, line):
            ran.append(line)
    assert len(ran) >= 7, ran  # faces ×4, generate, inspect ×2


def _words(line: str, clone: Clone) -> list[str]:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as error:
        pytest.fail(f"README shell line does not parse ({error}): {line}")
    expanded = []
    for word in words:
        for name, value in clone.variables.items():
            word = word.replace(f"${{{name}}}", value).replace(f"${name}", value)
        assert "$" not in word, f"README line uses an undefined variable: {line}"
        expanded.append(word)
    return expanded


def _check_facestudio(argv: list[str], clone: Clone, line: str) -> bool:
    """Parse with the real parser, check inputs, follow the training chain, run if fast."""
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"README line is not a valid facestudio command: {line}")
    inputs, outputs = _files(argv[1:])
    for name in inputs:
        assert clone.exists(name), f"README line reads '{name}', which nothing made: {line}"
    chain = {"train": _check_train, "export": _check_export}.get(args.command)
    if chain is not None:
        chain(args, clone, line)
    runnable = (
        args.command in FAST
        and not CHECKED_ONLY & set(argv)
        and all(clone.path(n).exists() for n in inputs)
    )
    if runnable:
        assert main(argv[1:]) == 0, line
        for name in outputs:
            assert name == "-" or clone.path(name).exists(), f"{line} did not write {name}"
    for name in outputs:
        clone.made[str(clone.path(name))] = args
    return runnable


def _files(words: list[str]) -> tuple[list[str], list[str]]:
    """(files read, files written) of a command's words, by flag and by name."""
    inputs, outputs = [], []
    for previous, word in zip(["", *words], words, strict=False):
        if previous in OUTPUT_FLAGS:
            outputs.append(word)
        elif word in YOURS or _names_a_file(word):
            inputs.append(word)
    return inputs, outputs


def _names_a_file(word: str) -> bool:
    return not word.startswith("-") and ("/" in word or word.endswith(INPUT_SUFFIXES))


def _check_train(args, clone: Clone, line: str) -> None:
    """The config's data is what an earlier line prepared, at the size the model trains at;
    the run folder counts as made."""
    config = load_config(clone.path(args.config))
    prepared_by = clone.made_by(config.data.path)
    assert prepared_by is not None or clone.exists(config.data.path), (
        f"{line}: its config reads '{config.data.path}', which no earlier line prepares"
    )
    if prepared_by is not None and config.model.init == "random":
        side = config.data.resolution or component_sizes(config.model).sample_size
        assert prepared_by.resolution == side, (
            f"{line} trains at {side} px but the data was prepared at {prepared_by.resolution} px"
        )
    clone.made[str(clone.path(config.output_dir))] = args
    clone.runs[str(clone.path(config.output_dir))] = args.config


def _check_export(args, clone: Clone, line: str) -> None:
    """The checkpoint is one the training line's run writes (its last step)."""
    checkpoint = clone.path(args.checkpoint)
    trained_by = clone.runs.get(str(checkpoint.parent.parent))
    if trained_by is None:
        assert checkpoint.exists(), f"{line}: no earlier line trains this run"
        return
    config = load_config(clone.path(trained_by))
    assert checkpoint.name == checkpoint_name(config.train.max_steps), (
        f"{line}: the run writes its last checkpoint as "
        f"{checkpoint_name(config.train.max_steps)}, not {checkpoint.name}"
    )


def _check_script(argv: list[str], clone: Clone, line: str) -> bool:
    script = clone.path(argv[1])
    assert script.is_file(), f"README line runs a missing script: {line}"
    subprocess.run(["bash", "-n", str(script)], check=True)
    return False


def _check_python(argv: list[str], clone: Clone, line: str) -> bool:
    assert clone.path(argv[1]).is_file(), f"README line runs a missing file: {line}"
    return False


def _check_pip(argv: list[str], clone: Clone, line: str) -> bool:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    known = set(extras.get("optional-dependencies", {}))
    for word in argv:
        found = re.fullmatch(r"\.\[([\w,-]+)\]", word)
        if found:
            missing = set(found.group(1).split(",")) - known
            assert not missing, f"README line installs unknown extras {missing}: {line}"
    return False


CHECKS = {
    "facestudio": _check_facestudio,
    "bash": _check_script,
    "python": _check_python,
    "pip": _check_pip,
}
