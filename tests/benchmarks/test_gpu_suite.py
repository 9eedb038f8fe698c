"""The GPU benchmark suite (benchmarks/gpu_suite.py), proved on the CPU before a GPU minute is
spent on it: the whole suite at tiny sizes, its runner's time boxes and partial saves, its
fail-fast preflight, and the wheels it carries to the GPU machine."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SUITE = BENCHMARKS / "gpu_suite.py"
SHARED = BENCHMARKS.parents[1] / "shared"
sys.path.insert(0, str(BENCHMARKS))  # the suite's own modules, as the script imports them

from gpu.preflight import CARRIED  # noqa: E402
from gpu.runner import Report, Section, SectionSkipped, run_sections  # noqa: E402
from gpu.settings import TARGETS  # noqa: E402
from gpu.wheels import slim_wheel  # noqa: E402

SECTIONS = [
    "build",
    "inference",
    "memory",
    "photos",
    "face_encoder",
    "channels_last",
    "training",
    "cuda_graphs",
    "compile",
]


def run_suite(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SUITE), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu-suite")
    done = run_suite("--tiny", "--results-dir", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = list(out.glob("gpu-*.json"))
    assert [p.name for p in reports] == ["gpu-cpu-tiny.json"]
    return json.loads(reports[0].read_text()), done.stdout


def positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_tiny_run_measures_every_section(tiny_run):
    report, table = tiny_run
    sections = report["sections"]
    assert report["complete"] and report["mode"] == "tiny"
    assert list(sections) == SECTIONS
    expected_skips = {"cuda_graphs"} if not torch.cuda.is_available() else set()
    if not (SHARED / "data/deepface").is_dir() and not os.environ.get("CI"):
        expected_skips.add("photos")
    for name, result in sections.items():
        wanted = "skipped" if name in expected_skips else "ok"
        assert result["status"] == wanted, (name, result)
        assert name in table
    assert "CUDA" in sections["cuda_graphs"].get("reason", "CUDA")
    assert [c["metric"] for c in report["checks"]] == list(TARGETS)
    assert all(c["met"] is None for c in report["checks"])  # targets judge GPU runs only


@pytest.mark.slow
def test_tiny_run_numbers_are_sane_and_consistent(tiny_run):
    sections = tiny_run[0]["sections"]
    inference = sections["inference"]
    median = inference["median_s_per_image"]
    assert all(positive(v) for v in median.values()) and len(median) == 4
    assert all(len(times) == inference["rounds"] >= 1 for times in inference["times_s"].values())
    assert inference["ratio_facestudio_vs_sd"] == pytest.approx(
        median["facestudio_1_person"] / median["stable_diffusion"], abs=2e-3
    )
    assert 0.2 < inference["ratio_3_people_vs_1"] < 5
    assert all(positive(v) for v in sections["memory"]["weights_gb"].values())
    assert sections["build"]["attention"]["stable_diffusion"] == ["AttnProcessor2_0"]
    if sections["photos"]["status"] == "ok":
        assert positive(sections["photos"]["seconds_per_extra_photo"])
    assert all(positive(v) for v in sections["face_encoder"]["median_s"].values())
    assert positive(sections["channels_last"]["speedup_channels_last"])
    runs = sections["training"]["runs"]
    assert {(r["batch_size"], r["checkpointing"]) for r in runs.values()} >= {(2, False), (2, True)}
    for run in runs.values():
        if run["optimizer"] == "adamw":
            assert run["status"] == "ok" and positive(run["samples_per_s"])
        else:
            assert run["status"] in ("ok", "not available")


@pytest.mark.slow
def test_compiled_unet_matches_eager_and_does_not_recompile_per_call(tiny_run):
    """The fast path's premise, checked with dynamo alone: the compiled U-Net computes what
    eager does, and a second multi-person call reuses the graphs of the first (identity
    routing travels per call in cross_attention_kwargs, not as new processor objects)."""
    compiled = tiny_run[0]["sections"]["compile"]
    assert compiled["relative_difference_1_person"] < 1e-5
    assert compiled["relative_difference_3_people"] < 1e-5
    assert compiled["graphs_per_3_people_call"][1] == 0


def noop_rows(result: dict) -> list[tuple[str, str]]:
    return []


def test_timed_generation_needs_no_face_analysis(tmp_path):
    """The GPU machine has no dlib: the inference, memory and channels-last sections must not
    detect people (several people get explicit regions). dlib is shadowed by a module whose
    import fails, as it does there."""
    blocked = tmp_path / "blocked" / "dlib"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('no dlib on this machine')\n")
    done = subprocess.run(
        [
            sys.executable,
            str(SUITE),
            "--tiny",
            "--results-dir",
            str(tmp_path / "out"),
            "--sections",
            "build,inference,memory,channels_last",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(blocked.parent)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sections = json.loads((tmp_path / "out" / "gpu-cpu-tiny.json").read_text())["sections"]
    for name in ("inference", "memory", "channels_last"):
        assert sections[name]["status"] == "ok", (name, sections[name])
    assert set(sections["inference"]["median_s_per_image"]) >= {
        "facestudio_2_people",
        "facestudio_3_people",
    }


def test_runner_saves_after_each_section_and_contains_failures(tmp_path):
    path = tmp_path / "report.json"
    report = Report(path, {"mode": "test"})
    seen_on_disk = []

    def first(state):
        return {"value": 1}

    def reads_report(state):
        seen_on_disk.append(json.loads(path.read_text())["sections"])
        return {}

    def broken(state):
        raise RuntimeError("broken input\nsecond line")

    def slow(state):
        time.sleep(5)

    def not_here(state):
        raise SectionSkipped("no photos here")

    sections = [
        Section("first", first, noop_rows),
        Section("second", reads_report, noop_rows),
        Section("broken", broken, noop_rows),
        Section("after_broken", first, noop_rows, needs=("broken",)),
        Section("slow", slow, noop_rows),
        Section("not_here", not_here, noop_rows),
        Section("too_long", first, noop_rows, min_s=1000),
    ]
    started = time.monotonic()
    run_sections(sections, report, {"slow": 0.3}, started + 100, {})
    assert time.monotonic() - started < 4  # the time box stopped the slow section
    assert seen_on_disk[0]["first"]["status"] == "ok"  # saved before the next section ran
    saved = json.loads(path.read_text())["sections"]
    assert saved["first"]["value"] == 1
    assert saved["broken"]["status"] == "failed"
    assert saved["broken"]["reason"] == "RuntimeError: broken input"
    assert saved["after_broken"] == {
        "status": "skipped",
        "reason": "needs broken, which did not run",
    }
    assert saved["slow"]["status"] == "timed out"
    assert (saved["not_here"]["status"], saved["not_here"]["reason"]) == (
        "skipped",
        "no photos here",
    )
    assert saved["too_long"]["status"] == "skipped"
    assert saved["too_long"]["reason"].startswith("budget:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tiny", "--resolution", "100"], "--resolution must be a multiple of 64"),
        (["--tiny", "--budget-s", "0"], "--budget-s must be positive"),
        (["--tiny", "--photos", "/nonexistent/photos"], "is not a folder"),
        (["--tiny", "--sections", "build,nope"], "unknown section(s) nope"),
    ],
)
def test_bad_arguments_stop_with_one_line(args, message, tmp_path):
    done = run_suite(*args, "--results-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("gpu suite: ")
    assert message in done.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_full_suite_without_cuda_stops_before_any_work(tmp_path):
    done = run_suite("--results-dir", str(tmp_path))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("gpu suite: ")]
    assert len(errors) == 1 and "no CUDA device" in errors[0] and "--tiny" in errors[0]
    assert not list(tmp_path.iterdir())


def test_report_never_replaces_a_folder(tmp_path):
    (tmp_path / "gpu-cpu-tiny.json").mkdir()
    done = run_suite("--tiny", "--results-dir", str(tmp_path), "--sections", "build")
    assert done.returncode == 2
    assert "is not a regular file" in done.stderr
    assert (tmp_path / "gpu-cpu-tiny.json").is_dir()


def test_slim_wheel_keeps_one_native_library_and_a_matching_record(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    files = {
        "pkg/__init__.py": b"",
        "pkg/libpkg_cpu.so": b"cpu",
        "pkg/libpkg_cuda118.so": b"old" * 100,
        "pkg/libpkg_cuda130.so": b"new",
    }
    record = "".join(f"{name},sha256=x,{len(data)}\n" for name, data in files.items())
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("pkg-1.0.dist-info/RECORD", record + "pkg-1.0.dist-info/RECORD,,\n")
    slim_wheel(wheel, "_cuda130")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        listed = {
            line.split(",")[0] for line in archive.read("pkg-1.0.dist-info/RECORD").decode().split()
        }
        assert archive.read("pkg/libpkg_cuda130.so") == b"new"
    assert "pkg/libpkg_cuda118.so" not in names
    assert names == listed  # RECORD names exactly the files the wheel holds


def test_carried_wheels_satisfy_the_project_requirements():
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((BENCHMARKS.parent / "pyproject.toml").read_text())
    declared = {Requirement(r).name: Requirement(r) for r in pyproject["project"]["dependencies"]}
    for pinned in map(Requirement, CARRIED.values()):
        version = next(iter(pinned.specifier)).version
        if pinned.name in declared:
            assert declared[pinned.name].specifier.contains(version), pinned
