"""Download the wheels a GPU machine without network lacks (preflight's `CARRIED`) into
benchmarks/gpu/wheels/ (git-ignored), for the device tool to carry, and check that they fit.

    python benchmarks/gpu/wheels.py [--cuda 130] [--no-bitsandbytes]

The machine runs Python 3.12 on x86-64 with torch, transformers and accelerate already there,
so only pure or binary wheels for that platform, without dependencies, are fetched.
bitsandbytes' wheel ships one native library per CUDA and ROCm version (43 MB); all but the
one for the machine's CUDA (`--cuda`, torch.version.cuda without the dot) are dropped, and the
wheel's RECORD is rewritten to match. What travels (the working tree plus these wheels) must
stay under the device tool's 64 MiB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpu.preflight import CARRIED

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(__file__).resolve().parent / "wheels"
TRAVEL_LIMIT = 64 * 2**20
PLATFORM = [
    "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:", "--no-deps",
    *(f"--platform={p}" for p in (
        "manylinux_2_35_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64",
        "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
        "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64", "any",
    )),
]  # fmt: skip


def download(requirement: str, folder: Path) -> Path:
    """One wheel for the GPU machine's platform, no dependencies; its path."""
    before = set(folder.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", *PLATFORM, "-d", str(folder), requirement],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_").lower()
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(name + "-")]
    if not found:
        raise SystemExit(f"pip saved no wheel for {requirement} in {folder}")
    return (set(found) - before or set(found)).pop()


def slim_wheel(path: Path, keep: str) -> None:
    """Drop the package's native libraries except those whose name contains `keep` (and the
    CPU one), rewriting RECORD so the wheel stays valid for pip."""
    with zipfile.ZipFile(path) as source:
        members = source.infolist()
        contents = {m.filename: source.read(m) for m in members}
    dropped = {
        name
        for name in contents
        if name.endswith(".so") and "/lib" in name and keep not in name and "_cpu" not in name
    }
    record = next(name for name in contents if name.endswith(".dist-info/RECORD"))
    lines = [
        line
        for line in contents[record].decode().splitlines()
        if line and line.split(",")[0] not in dropped
    ]
    contents[record] = ("\n".join(lines) + "\n").encode()
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".whl", delete=False) as handle:
        temporary = Path(handle.name)
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target:
        for member in members:
            if member.filename not in dropped:
                target.writestr(member, contents[member.filename], zipfile.ZIP_DEFLATED)
    temporary.replace(path)


def travelling_bytes() -> int:
    """Bytes of the working tree that travels (tracked and untracked-not-ignored files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    return sum(
        (ROOT / name.decode()).stat().st_size
        for name in listed
        if name and (ROOT / name.decode()).is_file()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", default="130", help="CUDA of the machine's torch (13.0: 130)")
    parser.add_argument("--no-bitsandbytes", action="store_true", help="no 8-bit Adam")
    args = parser.parse_args()
    WHEELS.mkdir(exist_ok=True)
    for old in WHEELS.glob("*.whl"):
        old.unlink()  # one version of each: two would stop the install there
    for name, requirement in CARRIED.items():
        if name == "bitsandbytes" and args.no_bitsandbytes:
            continue
        wheel = download(requirement, WHEELS)
        if name == "bitsandbytes":
            slim_wheel(wheel, f"_cuda{args.cuda}")
    wheels = sum(p.stat().st_size for p in WHEELS.glob("*.whl"))
    tree = travelling_bytes()
    for wheel in sorted(WHEELS.glob("*.whl")):
        print(f"{wheel.stat().st_size / 2**20:7.1f} MiB  {wheel.name}")
    print(f"working tree {tree / 2**20:.1f} MiB + wheels {wheels / 2**20:.1f} MiB")
    if tree + wheels > TRAVEL_LIMIT:
        print(
            f"too large to travel: {(tree + wheels) / 2**20:.1f} MiB > 64 MiB; "
            "rerun with --no-bitsandbytes or make the working tree smaller",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
