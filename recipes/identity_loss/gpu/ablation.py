"""The identity-loss ablations continued on a lent GPU, all arms side by side on one device.

    python recipes/identity_loss/gpu/ablation.py --pack PACK --budget-s 300 [--out DIR]

Restores the packed training data (`recipes/bundled_model/transfer.py pack-data`), starts every
arm of this folder (diffusion-base/-identity, decoder-base/-identity: each pair differs only in
its identity-loss settings) from the bundled model, stops them all at the deadline, exports
each pair at the latest checkpoint step both arms reached (equal steps), and writes what comes
back in few files:
- `arms.tar.NN`: the arms in fp16, one tar split into parts just under 16 MiB (`cat` rejoins
  them); a U-Net arm without its unchanged VAE, a decoder arm with only its VAE;
- `logs.tar`: every run's log.csv, console log and config, and the GPU's utilisation.

`--smoke` runs the same path on the CPU at toy sizes, so that the device call cannot fail on
the first line that differs there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BUNDLED = REPO / "src" / "facestudio" / "bundled_model"
TRANSFER = REPO / "recipes" / "bundled_model" / "transfer.py"
PAIRS = {
    "diffusion": ("diffusion-base", "diffusion-identity"),
    "decoder": ("decoder-base", "decoder-identity"),
}
RESERVE_S = 60
"""Seconds kept after the deadline for stopping, exporting and packing."""
PART_BYTES = 16 * 2**20 - 2**16
"""Size of each returned part of the exported arms (the device returns at most 16 MiB a file)."""
SMOKE = {"batch_size": 2, "identity_max_samples": 2}
"""Toy sizes for --smoke (CPU, no loader workers, a checkpoint every step)."""


def _transfer():
    """recipes/bundled_model/transfer.py, the one owner of the pack format and of fp16 copies."""
    spec = importlib.util.spec_from_file_location("transfer", TRANSFER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arm_config(name: str, work: Path, smoke: bool) -> Path:
    """The arm's TOML with the device's paths, written as JSON beside its run folder."""
    config = tomllib.loads((HERE / f"{name}.toml").read_text())
    config["output_dir"] = str(work / name)
    config["model"]["pipeline"] = str(BUNDLED)
    config["data"]["path"] = str(work / "data")
    if smoke:
        config["data"]["num_workers"] = 0
        config["checkpoints"]["every_steps"] = 1
        config["logging"]["every_steps"] = 1
        for key, value in SMOKE.items():
            if key in config["train"] or key == "batch_size":
                config["train"][key] = value
    path = work / f"{name}.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def train_all(work: Path, deadline: float, smoke: bool) -> None:
    """Every arm as its own `facestudio train` process, stopped at the deadline (checkpoints
    are published by rename, so a stopped run leaves only whole ones)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    processes = {}
    for name in (arm for pair in PAIRS.values() for arm in pair):
        command = [
            sys.executable,
            "-m",
            "facestudio.interfaces.cli",
            "train",
            str(arm_config(name, work, smoke)),
        ] + (["--cpu"] if smoke else [])
        log = open(work / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        processes[name] = (
            subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            ),
            log,
        )
    monitor = _monitor_gpu(work / "gpu-utilisation.csv")
    while time.time() < deadline and any(p.poll() is None for p, _ in processes.values()):
        time.sleep(2)
    for process, _log in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for name, (process, log) in processes.items():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        print(f"{name}: exit {process.returncode}, latest step {_steps(work / name)[-1:]}")
    if monitor is not None:
        monitor.terminate()


def _monitor_gpu(path: Path) -> subprocess.Popen | None:
    """nvidia-smi's utilisation and memory every 5 s while the arms train (none on a CPU)."""
    try:
        return subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=timestamp,utilization.gpu,memory.used",
                "--format=csv",
                "-l",
                "5",
            ],
            stdout=open(path, "w"),
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return None


def _steps(run: Path) -> list[int]:
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if p.is_dir())


def export_pairs(work: Path, out: Path) -> dict:
    """Each pair exported at the latest step both arms reached, as fp16 folders in one tar
    that comes back split into parts (the device returns files of at most 16 MiB)."""
    transfer = _transfer()
    kept = work / "arms"
    summary = {}
    for kind, pair in PAIRS.items():
        common = sorted(set(_steps(work / pair[0])) & set(_steps(work / pair[1])))
        if not common:
            print(f"{kind}: no checkpoint step reached by both arms; nothing exported")
            continue
        summary[kind] = step = common[-1]
        for name in pair:
            exported = work / f"{name}-exported"
            checkpoint = work / name / "checkpoints" / f"checkpoint-{step:08d}"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "facestudio.interfaces.cli",
                    "export",
                    str(checkpoint),
                    "-o",
                    str(exported),
                ],
                check=True,
            )
            files = {
                p.relative_to(exported): p
                for p in exported.rglob("*")
                if p.is_file() and _returned(kind, p.relative_to(exported))
            }
            transfer.copy_as_fp16(files, kept / f"{name}-step{step}")
    if summary:
        with tarfile.open(work / "arms.tar", "w") as archive:
            archive.add(kept, arcname="arms")
        _split(work / "arms.tar", out)
    return summary


def _returned(kind: str, relative: Path) -> bool:
    """A U-Net arm comes back without its unchanged VAE, a decoder arm as its VAE alone."""
    return (relative.parts[0] == "vae") == (kind == "decoder")


def _split(path: Path, out: Path, part_bytes: int = PART_BYTES) -> None:
    """`path` as `out/NAME.00`, `.01`, ... of `part_bytes` each (rejoin with cat)."""
    with open(path, "rb") as source:
        for index, chunk in enumerate(iter(lambda: source.read(part_bytes), b"")):
            (out / f"{path.name}.{index:02d}").write_bytes(chunk)


def pack_logs(work: Path, out: Path) -> None:
    with tarfile.open(out / "logs.tar", "w") as archive:
        for path in (
            sorted(work.glob("*.log")) + sorted(work.glob("*.csv")) + sorted(work.glob("*.json"))
        ):
            archive.add(path, arcname=path.name)
        for name in (arm for pair in PAIRS.values() for arm in pair):
            if (work / name / "log.csv").is_file():
                archive.add(work / name / "log.csv", arcname=f"{name}-log.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True, help="transfer.py pack-data folder")
    parser.add_argument("--budget-s", type=float, required=True, help="wall seconds in all")
    parser.add_argument("--work", type=Path, default=Path("/tmp/identity-gpu"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "outputs")))
    parser.add_argument("--smoke", action="store_true", help="CPU, toy sizes")
    args = parser.parse_args()
    start = time.time()
    if not (args.pack / "samples.npz").is_file():
        raise SystemExit(
            f"'{args.pack}' is not a pack (no samples.npz); make one with "
            "recipes/bundled_model/transfer.py pack-data"
        )
    if args.budget_s <= RESERVE_S + 30:
        raise SystemExit(f"--budget-s must exceed {RESERVE_S + 30} s (training plus export)")
    if args.work.exists():
        raise SystemExit(f"'{args.work}' exists; give a new --work folder")
    args.work.mkdir(parents=True)
    args.out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(TRANSFER), "restore-data", str(args.pack), str(args.work / "data")],
        check=True,
    )
    print(f"data restored in {time.time() - start:.0f} s")
    train_all(args.work, start + args.budget_s - RESERVE_S, args.smoke)
    summary = export_pairs(args.work, args.out)
    (args.work / "summary.json").write_text(
        json.dumps({"exported_steps": summary, "wall_s": round(time.time() - start)}, indent=2)
    )
    pack_logs(args.work, args.out)
    print(f"exported {summary}; {time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()
