"""`facestudio eval` on broken benchmarks: a missing, FIFO or broken photo is one line before
any model loads; a run that fails leaves no `--out` behind, so its rerun is not refused; and
identities whose names make the same file name (`x/y`, `x_y`) get a grid each."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from facestudio.faces import analyzer as analyzer_module
from tests.conftest import MOBILEFACENET, YUNET, shared_file
from tests.reliability import malformed
from tests.reliability.helpers import FACE, assert_refused, fifo, run

OTHER_FACE = "data/deepface/id05/img13.jpg"


def _benchmark(tmp_path, first_photo, **changes):
    """Two identities (the first conditioned on `first_photo`), one seed, one step."""
    face, other = str(shared_file(FACE)), str(shared_file(OTHER_FACE))
    data = {
        "identities": [
            {"name": "one", "condition": [str(first_photo)], "reference": [face]},
            {"name": "two", "condition": [other], "reference": [other]},
        ],
        "seeds": [0],
        "steps": 1,
        **changes,
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    return path


def _eval(capsys, tmp_path, benchmark, *extra):
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
        YUNET,
        "--recognizer-model",
        MOBILEFACENET,
        *extra,
    )


@pytest.fixture
def no_models(monkeypatch):
    """Fail the test if a model starts loading."""
    from facestudio.pipeline import FaceStudioPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although the benchmark is broken")

    monkeypatch.setattr(analyzer_module, "build_backend", refuse)
    monkeypatch.setattr(FaceStudioPipeline, "from_pretrained", refuse)


def _holding(data: bytes):
    def make(path):
        path.write_bytes(data)
        return path

    return make


PHOTOS = {
    "missing": (lambda p: p, "no such file"),
    "FIFO": (fifo, "a FIFO"),
    "folder": (lambda p: p.mkdir() or p, "a folder"),
    "garbage EXIF": (_holding(malformed.webp_with_exif(b"junk")), "EXIF"),
    "not an image": (_holding(b"hello"), "not an image format"),
}


@pytest.mark.parametrize("kind", PHOTOS)
def test_a_broken_photo_is_refused_before_the_models_load(kind, tmp_path, no_models, capsys):
    make, words = PHOTOS[kind]
    photo = make(tmp_path / "photo.jpg")
    assert_refused(_eval(capsys, tmp_path, _benchmark(tmp_path, photo)), words, "photo.jpg")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("changes", "extra", "words"),
    [
        ({}, ["--steps", "0"], "steps"),
        ({}, ["--face-scale", "nan"], "finite"),
        ({"prompts": ["a cat"]}, [], "no text prior"),
        ({"multi_person": [{"people": []}]}, [], "names nobody"),
    ],
    ids=["--steps 0", "--face-scale nan", "prompts for a model without a prior", "empty case"],
)
def test_options_and_cases_are_checked_before_the_models_load(
    changes, extra, words, tmp_path, no_models, capsys
):
    benchmark = _benchmark(tmp_path, shared_file(FACE), **changes)
    assert_refused(_eval(capsys, tmp_path, benchmark, *extra), words)


def test_a_name_given_twice_is_refused(tmp_path, no_models, capsys):
    benchmark = _benchmark(tmp_path, shared_file(FACE))
    data = json.loads(benchmark.read_text())
    data["identities"][1]["name"] = "one"
    benchmark.write_text(json.dumps(data))
    assert_refused(_eval(capsys, tmp_path, benchmark), "'one' appears twice")


def test_a_failed_run_leaves_nothing_and_its_rerun_fails_the_same_way(tmp_path, capsys):
    """A reference photo without a face fails after the models loaded: the old code had made
    `--out/grids/` by then, and refused the rerun as "not empty"."""
    benchmark = _benchmark(tmp_path, shared_file(FACE))
    data = json.loads(benchmark.read_text())
    data["identities"][1]["reference"] = [str(shared_file("data/misc/white.png"))]
    benchmark.write_text(json.dumps(data))
    first = assert_refused(_eval(capsys, tmp_path, benchmark))
    assert not (tmp_path / "results").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".results")] == []
    second = assert_refused(_eval(capsys, tmp_path, benchmark))
    assert second == first and "not empty" not in second


def test_names_that_make_the_same_file_name_get_a_grid_each(tmp_path, capsys):
    face, other = str(shared_file(FACE)), str(shared_file(OTHER_FACE))
    names = ["x/y", "x_y", "X_Y", "multi_person", "n" * 300]
    data = {
        "identities": [
            {"name": name, "condition": [photo], "reference": [photo]}
            for name, photo in zip(names, [face, other] * 3, strict=False)
        ],
        "seeds": [0],
        "steps": 1,
        "multi_person": [{"people": ["x/y", "x_y"]}],
    }
    benchmark = tmp_path / "bench.json"
    benchmark.write_text(json.dumps(data))
    code, _, err = _eval(capsys, tmp_path, benchmark, "--ablations", "identity")
    assert code == 0, err
    out = tmp_path / "results"
    grids = json.loads((out / "results.json").read_text())["grids"]
    assert sorted(grids) == sorted(names) and len(set(grids.values())) == len(names)
    files = sorted(p.name for p in (out / "grids").iterdir())
    assert len(files) == len(names) + 1 and "multi_person.png" in files  # + the multi-person grid
    assert all(len(name) < 120 for name in files)
    for name, relative in grids.items():
        assert Image.open(out / relative).size[0] > 0, name
