"""JSON, TOML and YAML nested 100,000 deep or holding a 5,000-digit number, wherever FaceStudio
reads them (a training config, an eval benchmark, a model's config JSON, a prepared
`index.json`, a PNG's settings), are one line naming the problem, exit 2, before any model
loads: one bounded reader (`facestudio.structured_files`) reads them all. Errors quote at most
a bounded piece of what the user gave."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from facestudio.interfaces import generate_command
from facestudio.pipeline.model_info import BUNDLED_MODEL_DIR
from tests.conftest import shared_file
from tests.data.conftest import write_prepared
from tests.reliability import malformed
from tests.reliability.helpers import FACE, assert_refused, run

DEEP_CASES = {
    "JSON": ("json", malformed.deep("JSON")),
    "TOML": ("toml", malformed.deep("TOML")),
    "YAML flow": ("yaml", malformed.deep("YAML flow")),
    "YAML block": ("yaml", malformed.deep("YAML block")),
}
LONG_CASES = {
    kind: (kind.lower(), malformed.long_number(kind)) for kind in ("JSON", "TOML", "YAML")
}
NESTED = "nested more than"
LONG = "longer than"
MAX_LINE = 800
"""Characters an error line may have, whatever the user's input held (a list of the known
keys included)."""
MAX_QUOTED = 120
"""Characters of one piece of the user's input an error may quote."""


def _refused_briefly(result, *words) -> str:
    line = assert_refused(result, *words)
    assert len(line) < MAX_LINE, line
    longest_run = max(len(run.group()) for run in re.finditer(r"(.)\1*", line))
    assert longest_run <= MAX_QUOTED, line
    return line


@pytest.mark.parametrize(
    ("case", "words"),
    [*((c, NESTED) for c in DEEP_CASES), *((f"long {c}", LONG) for c in LONG_CASES)],
)
def test_a_train_config(case, words, tmp_path, capsys):
    suffix, text = LONG_CASES[case[5:]] if case.startswith("long ") else DEEP_CASES[case]
    path = tmp_path / f"config.{suffix}"
    path.write_text(text)
    _refused_briefly(run(capsys, "train", path, "--cpu"), words, "config.")


@pytest.fixture
def no_models(monkeypatch) -> None:
    """`eval` and `generate` fail the test if they start loading a model."""
    from facestudio.faces import analyzer

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although the input is invalid")

    monkeypatch.setattr(analyzer, "build_backend", refuse)
    monkeypatch.setattr(generate_command, "load_pipeline", refuse)


def _eval(capsys, tmp_path, benchmark):
    return run(
        capsys,
        "eval",
        "--model",
        "bundled",
        "--benchmark",
        benchmark,
        "--out",
        tmp_path / "results",
        "--detector-model",
        benchmark,  # any file: the definition is refused before the models are looked at
        "--recognizer-model",
        benchmark,
    )


@pytest.mark.parametrize(
    ("case", "words"),
    [*((c, NESTED) for c in DEEP_CASES), *((f"long {c}", LONG) for c in LONG_CASES)],
)
def test_an_eval_benchmark(case, words, tmp_path, no_models, capsys):
    suffix, text = LONG_CASES[case[5:]] if case.startswith("long ") else DEEP_CASES[case]
    path = tmp_path / f"bench.{suffix}"
    path.write_text(text)
    _refused_briefly(_eval(capsys, tmp_path, path), words, "bench.")
    assert not (tmp_path / "results").exists()


def _model_with(tmp_path, relative: str, text: str):
    folder = tmp_path / "model"
    for path in BUNDLED_MODEL_DIR.rglob("*.json"):
        target = folder / path.relative_to(BUNDLED_MODEL_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (folder / relative).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("relative", "text", "words"),
    [
        ("unet/config.json", malformed.deep("JSON"), NESTED),
        ("model_index.json", malformed.deep("JSON"), NESTED),
        ("unet/config.json", malformed.long_number("JSON"), LONG),
        ("scheduler/scheduler_config.json", malformed.long_number("JSON"), LONG),
        ("style_encoder/config.json", malformed.deep("JSON"), NESTED),
    ],
)
def test_a_model_config(relative, text, words, tmp_path, no_models, capsys):
    model = _model_with(tmp_path, relative, text)
    out = tmp_path / "out.png"
    args = ["generate", "--model", model, "--face", shared_file(FACE), "-o", out]
    _refused_briefly(run(capsys, *args), words, relative.split("/")[-1])
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [(malformed.deep("JSON"), NESTED), (malformed.long_number("JSON"), LONG), ("{", "not valid")],
)
def test_a_prepared_index(text, words, tmp_path, capsys):
    data = write_prepared(tmp_path / "data")
    (data / "index.json").write_text(text)
    config = tmp_path / "config.toml"
    config.write_text(
        f'output_dir = "{tmp_path / "run"}"\n[model]\nvae = "bundled"\n[data]\npath = "{data}"\n'
        "[train]\ntrain_style_encoder = true\n"  # a run that could make images: checked first
    )
    _refused_briefly(run(capsys, "train", config, "--cpu"), words, "index.json")


@pytest.mark.parametrize(
    ("text", "words"),
    [(malformed.deep("JSON"), NESTED), (malformed.long_number("JSON"), LONG)],
)
def test_png_settings_are_reported_unreadable(text, words, tmp_path, capsys):
    path = tmp_path / "image.png"
    path.write_bytes(malformed.settings_png(text))
    code, out, err = run(capsys, "inspect", path)
    assert code == 0 and "Traceback" not in err, err
    assert "settings: unreadable" in out and words in out
    code, out, err = run(capsys, "inspect", "--json", path)
    report = json.loads(out)
    assert code == 0 and report["settings"] is None and words in report["settings_error"]


# Beyond the listed cases: the same reader bounds what else a file can do.

VALID_YAML = "output_dir: o\ndata: {path: d}\n"
ALIAS_BOMB = "".join(
    f"    - &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)
BEYOND = {
    "YAML alias bomb (10^9 values)": (
        "yaml",
        VALID_YAML
        + "model:\n  clip_models:\n    - &a [x, x, x, x, x, x, x, x, x, x]\n"
        + ALIAS_BOMB,
        "values",
    ),
    "YAML alias to itself": ("yaml", VALID_YAML + "model:\n  clip_models: &a [*a]\n", NESTED),
    "YAML sexagesimal number": ("yaml", "seed: " + ":".join(["1"] * 200_000) + "\n", LONG),
    "TOML hex number": ("toml", "[train]\nseed = 0x" + "f" * 4000 + "\n", LONG),
    "TOML dotted key 100,000 deep": ("toml", ".".join(["a"] * 100_000) + " = 1\n", NESTED),
    "TOML header 100,000 deep": ("toml", "[" + ".".join(["a"] * 100_000) + "]\n", NESTED),
    "YAML hex key": ("yaml", "0x" + "f" * 4000 + ": 1\n", LONG),
    "a 20 MB config": ("toml", "# " + "x" * 20_000_000 + "\n", "over the"),
}


@pytest.mark.parametrize("case", BEYOND)
def test_beyond_the_listed_cases(case, tmp_path, capsys):
    suffix, text, words = BEYOND[case]
    path = tmp_path / f"config.{suffix}"
    path.write_text(text)
    _refused_briefly(run(capsys, "train", path, "--cpu"), words)


@pytest.mark.parametrize(
    "text",
    [
        'output_dir = "o"\n[data]\npath = "d"\n[train]\nbatch_size = "' + "x" * 1_000_000 + '"\n',
        'output_dir = "o"\n[data]\npath = "d"\n[train]\n' + "b" * 100_000 + " = 1\n",
        'output_dir = "o"\n[data]\npath = "d"\n[train]\nbatch_size = [' + "1," * 100_000 + "]\n",
        'output_dir = "o"\n[data]\npath = "d"\n[train]\nseed = 0x' + "f" * 90 + "\n",
    ],
    ids=["1 MB string", "100 kB key", "100,000-element list", "90-digit hex seed"],
)
def test_errors_quote_a_bounded_piece_of_the_input(text, tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text(text)
    _refused_briefly(run(capsys, "train", path, "--cpu"))


def test_a_long_path_is_quoted_in_part(tmp_path, capsys):
    folder = tmp_path
    for _ in range(30):
        folder = folder / ("d" * 100)
    folder.mkdir(parents=True)
    path = folder / "config.toml"
    path.write_text(malformed.deep("TOML"))
    line = _refused_briefly(run(capsys, "train", path, "--cpu"), NESTED, "config.toml")
    assert "…" in line


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
@pytest.mark.parametrize(("case", "words"), [("JSON", NESTED), ("long JSON", LONG)])
def test_a_prepare_manifest(suffix, case, words, tmp_path, capsys):
    text = LONG_CASES["JSON"][1] if case.startswith("long ") else DEEP_CASES["JSON"][1]
    path = tmp_path / f"list.{suffix}"
    path.write_text(f'"{FACE}"\n{text}\n' if suffix == "jsonl" else text)
    result = run(capsys, "prepare", path, "--out", tmp_path / "out")
    _refused_briefly(result, words, f"list.{suffix}")
    assert not (tmp_path / "out").exists()
