"""`facestudio train` on broken and hostile configurations: a one-line error naming the problem,
exit 2, and nothing written (no output_dir, no initial_pipeline) — checked before any work."""

from __future__ import annotations

import pytest

from facestudio.interfaces.cli import main
from facestudio.pipeline import FaceStudioPipeline
from tests.data.conftest import write_prepared


@pytest.fixture(scope="module")
def eight_photos_prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("prepared"))


VALID = 'output_dir = "{out}"\n[data]\npath = "{data}"\n'

CASES = {
    "yaml python tag": (
        "c.yaml",
        "output_dir: {out}\ndata: {{path: {data}}}\n"
        "train: !!python/object/apply:os.system ['touch {out}.pwned']\n",
        "not valid YAML: could not determine a constructor",
    ),
    "yaml syntax error": ("c.yaml", "output_dir: {out}\ndata: {{path: {data}\n", "not valid YAML"),
    "toml syntax error": ("c.toml", 'output_dir = "{out}\n', "not valid TOML"),
    "yaml top level not a table": ("c.yaml", "- 1\n- 2\n", "table of settings"),
    "negative learning rate": ("c.toml", VALID + "[train]\nlearning_rate = -1\n", "learning_rate"),
    "zero learning rate": ("c.toml", VALID + "[train]\nlearning_rate = 0\n", "learning_rate"),
    "nan learning rate": ("c.toml", VALID + "[train]\nlearning_rate = nan\n", "finite"),
    "zero batch size": ("c.toml", VALID + "[train]\nbatch_size = 0\n", "batch_size"),
    "negative max steps": ("c.toml", VALID + "[train]\nmax_steps = -5\n", "max_steps"),
    "dropout above one": ("c.toml", VALID + "[train]\nstyle_dropout = 1.5\n", "style_dropout"),
    "ema decay above one": ("c.toml", VALID + "[train]\nema_decay = 2.0\n", "ema_decay"),
    "negative seed": ("c.toml", VALID + "[train]\nseed = -1\n", "seed"),
    "zero keep_last": ("c.toml", VALID + "[checkpoints]\nkeep_last = 0\n", "keep_last"),
    "zero logging interval": ("c.toml", VALID + "[logging]\nevery_steps = 0\n", "every_steps"),
    "validation steps beyond the schedule": (
        "c.toml",
        VALID + "[validation]\nsteps = 100000\n",
        "validation.steps",
    ),
    "zero model size": ("c.toml", VALID + "[model]\nsizes = {{unet_channels = [0]}}\n", "sizes"),
    "unknown model size": (
        "c.toml",
        VALID + "[model]\nsizes = {{unet_chanels = [8]}}\n",
        "did you mean",
    ),
    "unknown objective": ("c.toml", VALID + '[train]\ntarget = "difusion"\n', "not an objective"),
    "bool for a number": ("c.toml", VALID + "[train]\nbatch_size = true\n", "whole number"),
    "NUL in a path": ("c.yaml", 'output_dir: "{out}\\0x"\ndata: {{path: {data}}}\n', "NUL"),
    "missing prepared data": (
        "c.toml",
        'output_dir = "{out}"\n[data]\npath = "{out}-nothing"\n'
        "[train]\nallow_untrained_frozen = true\n",
        "prepare",
    ),
    "missing start pipeline": (
        "c.toml",
        VALID + '[model]\ninit = "pipeline"\npipeline = "{out}-nothing"\n',
        "not a FaceStudio pipeline",
    ),
    "more accumulation than batches": (
        "c.toml",
        VALID
        + "[train]\nallow_untrained_frozen = true\nbatch_size = 4\ngradient_accumulation_steps = 3\n",
        "gradient_accumulation_steps",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_one_line_exit_2_and_writes_nothing(
    case, tmp_path, eight_photos_prepared, capsys
):
    name, text, message = CASES[case]
    out = tmp_path / "run"
    path = tmp_path / name
    path.write_text(text.format(out=out, data=eight_photos_prepared))
    assert main(["train", str(path), "--cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "run.pwned").exists()


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_bytes(b'output_dir = "\xff\xfe"\n')
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8" in err


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_config_path_that_is_no_file_is_one_line(kind, tmp_path, capsys):
    path = tmp_path / "c.toml"
    if kind == "folder":
        path.mkdir()
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err


def test_an_output_dir_that_is_a_file_is_refused(tmp_path, eight_photos_prepared, capsys):
    out = tmp_path / "run"
    out.write_text("a user's file")
    path = tmp_path / "c.toml"
    path.write_text(VALID.format(out=out, data=eight_photos_prepared))
    assert main(["train", str(path), "--cpu"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert out.read_text() == "a user's file"


def test_a_run_refuses_other_model_settings_until_restarted(
    tmp_path, eight_photos_prepared, capsys
):
    """A failed first start leaves nothing; a run keeps its model settings; --restart resets."""
    out = tmp_path / "run"
    path = tmp_path / "c.toml"
    settings = (
        "[train]\nallow_untrained_frozen = true\nbatch_size = 8\nmax_steps = 1\n"
        "[checkpoints]\nevery_steps = 1\nkeep_last = 1\n"
    )
    path.write_text(
        VALID.format(out=out, data=eight_photos_prepared) + settings + "learning_rate = -1\n"
    )
    assert main(["train", str(path), "--cpu"]) == 2 and not out.exists()

    path.write_text(VALID.format(out=out, data=eight_photos_prepared) + settings)
    assert main(["train", str(path), "--cpu"]) == 0
    first_config = (out / "train_config.json").read_text()

    changed = VALID.format(out=out, data=eight_photos_prepared) + "[model]\nnum_tokens = 8\n"
    path.write_text(changed + settings.replace("max_steps = 1", "max_steps = 2"))
    capsys.readouterr()
    assert main(["train", str(path), "--cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "model.num_tokens = 4, now 8" in err and "--restart" in err and "output_dir" in err
    assert (out / "train_config.json").read_text() == first_config  # nothing changed
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-00000001"]

    assert main(["train", str(path), "--cpu", "--restart"]) == 0
    record = (out / "initial_pipeline" / "model_settings.json").read_text()
    assert '"model.num_tokens": 8' in record
    started = FaceStudioPipeline.from_pretrained(out / "initial_pipeline")
    assert started.guidance.config.num_tokens == 8  # the model the config says, really
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-00000002"]
