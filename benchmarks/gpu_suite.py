"""The GPU benchmark suite: the full-size (SD-1.5-shaped) path measured on one CUDA device in
one command of at most about 4 minutes, inference and training.

Sections, in order, each in its own time box, the report saved after each one: build,
inference (FaceStudio vs diffusers' SD pipeline, 1/2/3 people), memory, photos (the cost of
each reference photo with dlib), face_encoder (the torch descriptor per photo), channels_last,
training, cuda_graphs (torch.compile with CUDA graphs), compile (without them). A global
`--budget-s` skips what no longer fits. Writes RESULTS_DIR/gpu-<device>.json, prints a table.

    python benchmarks/gpu_suite.py                      # on a CUDA machine (SD-1.5 shapes)
    python benchmarks/gpu_suite.py --tiny               # every section on the CPU, in seconds
    bash benchmarks/gpu/run_on_device.sh                # on the lent GPU machine (docs/performance.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gpu.preflight import PreflightError, check_device, check_imports, check_output
from gpu.settings import MODES, TARGETS, TINY, SuiteSettings

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = [
    # name, module (benchmarks/gpu/), run, rows, seconds it needs to start, sections it needs
    ("build", "models", "build_section", "build_rows", 20, ()),
    ("inference", "inference", "inference_section", "inference_rows", 15, ("build",)),
    ("memory", "inference", "memory_section", "memory_rows", 5, ("build",)),
    ("photos", "photos", "photos_section", "photos_rows", 5, ("build",)),
    ("face_encoder", "photos", "face_encoder_section", "face_encoder_rows", 5, ()),
    (
        "channels_last",
        "fast_path",
        "channels_last_section",
        "channels_last_rows",
        10,
        ("build",),
    ),
    ("training", "training", "training_section", "training_rows", 25, ()),
    # CUDA graphs (the fastest variant) first: if the budget holds one compile only, it is this.
    ("cuda_graphs", "fast_path", "cuda_graphs_section", "compiled_rows", 60, ("build",)),
    ("compile", "fast_path", "compile_section", "compiled_rows", 45, ("build",)),
]
SHAPES = {"sd15": dict(preset="sd15", training_model="sd15"), "tiny": dict(preset="tiny")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (CI)")
    parser.add_argument("--budget-s", type=float, default=220.0, help="global deadline")
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where gpu-<device>.json goes (default: benchmarks/results; with --tiny a temp folder)",
    )
    parser.add_argument("--photos", type=Path, help="a folder of photos of one person")
    parser.add_argument("--sections", help="comma-separated subset of the sections to run")
    parser.add_argument("--resolution", type=int, help="override the image size")
    parser.add_argument("--steps", type=int, help="override the denoising steps")
    parser.add_argument("--repeats", type=int, help="override the timed rounds")
    parser.add_argument(
        "--box-scale", type=float, default=1.0, help="multiply every section's time box"
    )
    parser.add_argument(
        "--shapes",
        choices=sorted(SHAPES),
        help="override the model shapes (sd15 on a CPU: a shape check)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> SuiteSettings:
    settings = MODES["tiny" if args.tiny else "full"]
    overrides = {
        k: getattr(args, k) for k in ("resolution", "steps", "repeats") if getattr(args, k)
    }
    if args.shapes:
        overrides.update(SHAPES[args.shapes])
        if args.shapes == "sd15":
            overrides["text_encoder"] = MODES["full"].text_encoder
    if args.box_scale <= 0:
        raise PreflightError(f"--box-scale must be positive, got {args.box_scale}")
    overrides["box_s"] = {k: v * args.box_scale for k, v in settings.box_s.items()}
    for key in ("resolution", "steps", "repeats"):
        if key in overrides and overrides[key] < 1:
            raise PreflightError(f"--{key} must be at least 1, got {overrides[key]}")
    if "resolution" in overrides and overrides["resolution"] % 64:
        raise PreflightError(
            f"--resolution must be a multiple of 64, got {overrides['resolution']}"
        )
    return dataclasses.replace(settings, **overrides)


def photo_list(folder: Path | None) -> list[Path] | None:
    if folder is None:
        return None
    if not folder.is_dir():
        raise PreflightError(f"--photos '{folder}' is not a folder")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise PreflightError(f"--photos '{folder}' holds no .jpg or .png files")
    return photos


def imported(module: str):
    """`gpu.<module>`, or the error importing it raised. Imports happen before the first time
    box (an alarm inside a half-done import would break it for every later section), and a
    module that cannot import fails its own sections only."""
    try:
        return importlib.import_module(f"gpu.{module}")
    except Exception as exc:
        return exc


def bound(module, function: str):
    def call(*args):
        if isinstance(module, Exception):
            raise module
        return getattr(module, function)(*args)

    return call


def sections(chosen: list[str]):
    """The chosen sections, in running order."""
    from gpu.runner import Section

    needed = dict.fromkeys(row[1] for row in SECTIONS if row[0] in chosen)
    modules = {module: imported(module) for module in needed}
    return [
        Section(name, bound(modules[module], run), bound(modules[module], rows), min_s, needs)
        for name, module, run, rows, min_s, needs in SECTIONS
        if name in chosen
    ]


def quiet_libraries() -> None:
    """Random weights make diffusers and transformers warn about configs: noise here."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def section_names(given: str | None) -> list[str]:
    known = [row[0] for row in SECTIONS]
    if not given:
        return known
    names = [name.strip() for name in given.split(",")]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise PreflightError(
            f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return names


def checks(report: dict) -> list[dict]:
    """The issue's targets against this run's numbers (judged on the full GPU run only)."""
    from gpu.fast_path import fast_path_s_per_image

    found = report["sections"]
    values = {
        "ratio_facestudio_vs_sd": found.get("inference", {}).get("ratio_facestudio_vs_sd"),
        "ratio_3_people_vs_1": found.get("inference", {}).get("ratio_3_people_vs_1"),
        "peak_memory_gb": found.get("memory", {}).get("peak_memory_gb"),
        "fast_path_s_per_image": fast_path_s_per_image(found),
    }
    full = report["mode"] == "full"
    return [
        {
            "metric": metric,
            "value": values[metric],
            "target": bound,
            "what": what,
            "met": None if values[metric] is None or not full else values[metric] <= bound,
        }
        for metric, (bound, what) in TARGETS.items()
    ]


def report_path(folder: Path, device: str, tiny: bool) -> Path:
    """RESULTS_DIR/gpu-<device>.json (gpu-cpu-tiny.json for the tiny suite)."""
    name = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    return folder / f"gpu-{name}{'-tiny' if tiny else ''}.json"


def prepare(args: argparse.Namespace) -> tuple[SuiteSettings, dict, Path]:
    """Everything checked before the first expensive step; PreflightError on any problem."""
    if args.budget_s <= 0:
        raise PreflightError(f"--budget-s must be positive, got {args.budget_s}")
    settings = settings_from(args)
    photos = photo_list(args.photos)
    tiny = settings.mode == TINY.mode
    folder = args.results_dir or (
        Path(tempfile.gettempdir()) / "facestudio-gpu-suite" if tiny else RESULTS
    )
    if tiny:  # the tiny suite runs on the CPU: its report's name is known before any import
        check_output(report_path(folder, "cpu", tiny))
    device = check_device(settings.mode)
    environment = check_imports()
    path = report_path(folder, device["device"], tiny)
    check_output(path)
    header = {
        "suite": "facestudio gpu suite",
        "mode": settings.mode,
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "budget_s": args.budget_s,
        **device,
        **environment,
        "settings": dataclasses.asdict(settings),
    }
    return settings, {"header": header, "photos": photos}, path


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    try:
        names = section_names(args.sections)
        settings, extra, path = prepare(args)
    except PreflightError as exc:
        print(f"gpu suite: {exc}", file=sys.stderr)
        return 2
    quiet_libraries()
    chosen = sections(names)
    from gpu.runner import Report, run_sections, table

    report = Report(path, extra["header"])
    state = {"settings": settings, "photos": extra["photos"]}
    deadline = started + args.budget_s
    run_sections(chosen, report, settings.box_s, deadline, state)
    report.data["checks"] = checks(report.data)
    report.data["elapsed_s"] = round(time.monotonic() - started, 1)
    report.data["complete"] = True
    report.save()
    print(table(chosen, report.data))
    print(f"wrote {path}", file=sys.stderr)
    failed = [
        n for n, r in report.data["sections"].items() if r["status"] in ("failed", "timed out")
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
