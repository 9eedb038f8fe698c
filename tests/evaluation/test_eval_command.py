"""`facestudio eval` end to end on a tiny random pipeline and real photos."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from facestudio.interfaces.cli import main
from tests.conftest import MOBILEFACENET, YUNET, shared_file


@pytest.fixture
def definition(tmp_path):
    root = shared_file("data/MANIFEST.json").parent
    people = {
        "deepface/id04": (
            ["deepface/id04/img16.jpg"],
            ["deepface/id04/img17.jpg", "deepface/id04/img59.jpg"],
        ),
        "deepface/id05": (["deepface/id05/img13.jpg"], ["deepface/id05/img14.jpg"]),
    }
    data = {
        "identities": [
            {
                "name": n,
                "condition": [str(root / p) for p in c],
                "reference": [str(root / p) for p in r],
            }
            for n, (c, r) in people.items()
        ],
        "seeds": [0, 1],
        "steps": 2,
        "styles": [str(root / "misc/angry.jpg")],
        "multi_person": [
            {
                "people": ["deepface/id04", "deepface/id05"],
                "style": str(root / "groups/couple.jpg"),
                "width": 128,
                "height": 64,
            }
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    return path


def test_eval_runs_end_to_end(tiny_pipeline, tiny_pipeline_folder, definition, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_pipeline_folder),
            "--benchmark",
            str(definition),
            "--out",
            str(out),
            "--detector-model",
            str(YUNET),
            "--recognizer-model",
            str(MOBILEFACENET),
            "--face-scale",
            "3",
        ]
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0 and "with identity" in printed and "impostor identity" in printed
    assert "eval: 100%" in captured.err and "12/12" in captured.err  # 2 people × 2 seeds × 3
    results = json.loads((out / "results.json").read_text())
    summary = results["summary"]
    assert set(summary["ablations"]) == {"identity", "no_identity", "impostor"}
    assert summary["ablations"]["identity"]["images"] == 4  # 2 people × 2 seeds
    assert 0.3 < summary["real_photo_ceiling"] <= 1.0
    assert summary["biased_scoring"] is False and summary["scoring_images_per_s"] > 0
    assert summary["sampling"] == {
        "num_inference_steps": 2,
        "style_guidance_scale": 5.0,
        "face_guidance_scale": 3.0,
    }
    assert len(results["images"]) == 12 and len(results["multi_person"]) == 2
    # Sim(Ref) and copy-paste for the identity ablation only: the impostor has another input.
    identity = summary["ablations"]["identity"]
    assert 0.0 <= identity["similarity_to_condition_misses_as_0"] <= 1.0
    # Bounded by the triangle inequality on the sphere of embeddings.
    assert identity["copy_paste"] is None or -1.0 - 1e-6 <= identity["copy_paste"] <= 1.0 + 1e-6
    assert "copy_paste" not in summary["ablations"]["impostor"]
    assert all(("copy_paste" in r) == (r["ablation"] == "identity") for r in results["images"])
    assert "Sim(Ref)" in (out / "results.md").read_text()
    for name in ("deepface_id04", "deepface_id05"):  # "set/person" names as safe file names
        grid = Image.open(out / "grids" / f"{name}.png")
        assert grid.size == (3 * 128, 3 * 128)  # reference + 2 seeds, one row per ablation
    assert Image.open(out / "grids" / "multi_person.png").size == (2 * 128, 64)  # 2 seeds
    assert "two real photos (ceiling)" in (out / "results.md").read_text()
    ceilings = summary["resolution_ceilings"]  # the photo as a portrait at the model's size
    assert (
        ceilings["size"] == tiny_pipeline.unet.config.sample_size * tiny_pipeline.vae_scale_factor
    )
    # A real 64-px portrait still looks like the person; a random autoencoder destroys it.
    assert ceilings["portrait"] > 0.2
    assert ceilings["portrait_through_autoencoder"] < ceilings["portrait"] / 2
    assert "through the model's autoencoder" in (out / "results.md").read_text()


def test_eval_refuses_a_non_empty_folder_and_a_bad_definition(
    tiny_pipeline_folder, definition, tmp_path, capsys
):
    out = tmp_path / "used"
    out.mkdir()
    (out / "x").write_text("mine")
    args = ["eval", "--model", str(tiny_pipeline_folder), "--out", str(out)]
    assert main([*args, "--benchmark", str(definition)]) == 2
    assert "not empty" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"identities": [], "seeds": [0], "stesp": 3}))
    assert (
        main(
            [
                "eval",
                "--model",
                str(tiny_pipeline_folder),
                "--out",
                str(tmp_path / "new"),
                "--benchmark",
                str(bad),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "unknown key" in err and "stesp" in err


def test_default_scoring_models_do_not_depend_on_the_working_folder(tmp_path, monkeypatch):
    from facestudio.interfaces import eval_command

    shared_file("models/mobilefacenet.onnx")
    monkeypatch.chdir(tmp_path)  # outside the checkout
    monkeypatch.delenv(eval_command.MODELS_ENV, raising=False)
    found = eval_command.scoring_model(None, eval_command.DEFAULT_RECOGNIZER, "--recognizer-model")
    assert found == str(MOBILEFACENET)
    copied = tmp_path / "models"
    copied.mkdir()
    (copied / eval_command.DEFAULT_RECOGNIZER).write_bytes(b"onnx")
    monkeypatch.setenv(eval_command.MODELS_ENV, str(copied))
    assert eval_command.scoring_model(
        None, eval_command.DEFAULT_RECOGNIZER, "--recognizer-model"
    ) == str(copied / eval_command.DEFAULT_RECOGNIZER)


def test_without_scoring_models_one_line_names_the_flag(
    tiny_pipeline_folder, definition, tmp_path, monkeypatch, capsys
):
    from facestudio.interfaces import eval_command

    monkeypatch.setattr(eval_command, "CHECKOUT_MODELS", tmp_path / "nowhere")
    monkeypatch.delenv(eval_command.MODELS_ENV, raising=False)
    args = ["eval", "--model", str(tiny_pipeline_folder), "--benchmark", str(definition)]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "give --detector-model PATH.onnx" in errors[0]
    assert not (tmp_path / "r").exists()


def test_the_onnx_detector_prints_no_opencv_warning(capfd):
    from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig, OnnxBackendConfig

    onnx = OnnxBackendConfig(detector_model=str(YUNET), recognizer_model=str(MOBILEFACENET))
    analyzer = FaceAnalyzer(FaceAnalyzerConfig(backend="onnx", onnx=onnx))
    analyzer.analyze(str(shared_file("data/deepface/id04/img16.jpg")))
    assert "WARN" not in capfd.readouterr().err


def test_seeds_whose_images_overlap_are_refused_before_any_model_loads(
    definition, tmp_path, capsys
):
    """Image i of a case uses seed + i: seeds 0 and 1 with two images each would make seed 1
    twice and count it twice."""
    from facestudio.evaluation.benchmark import load_definition

    data = json.loads(definition.read_text())
    definition.write_text(json.dumps({**data, "seeds": [0, 1], "images_per_case": 2}))
    args = ["eval", "--model", str(tmp_path / "no-model"), "--benchmark", str(definition)]
    assert main([*args, "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seeds 0 and 1" in err and "seed 1" in err
    assert "[0, 2]" in err and not (tmp_path / "results").exists()

    definition.write_text(json.dumps({**data, "seeds": [0, 2], "images_per_case": 2}))
    spaced = load_definition(definition)
    image_seeds = [s + i for s in spaced.seeds for i in range(spaced.images_per_case)]
    assert image_seeds == [0, 1, 2, 3]
