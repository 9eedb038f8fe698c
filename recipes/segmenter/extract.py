"""Extract MediaPipe's selfie-segmentation model from the mediapipe 0.10.14 wheel into the
package (`src/facestudio/faces/models/`), with its hashes checked.

    python recipes/segmenter/extract.py [--wheel mediapipe-0.10.14-....whl] [--out DIR]

Without `--wheel` it runs `pip download mediapipe==0.10.14 --no-deps` (the CPython 3.11
manylinux wheel) into a temporary folder. Only the `.tflite` file is taken; mediapipe itself is
never installed or imported. The wheel's hash differs between platforms, so the check that
matters is the model's own sha256, which is the same in every 0.10.14 wheel's RECORD.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.10.14"
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
"""The general (256×256) selfie-segmentation model, 249,505 bytes."""
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
"""mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl, as extracted."""
OUT = Path(__file__).resolve().parents[2] / "src/facestudio/faces/models"


def download_wheel(folder: Path) -> Path:
    """The cp311 manylinux wheel of mediapipe, without its dependencies."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"mediapipe=={VERSION}",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux_2_17_x86_64",
            "-d",
            str(folder),
        ],
        check=True,
    )
    return next(folder.glob(f"mediapipe-{VERSION}-*.whl"))


def extract(wheel: Path, out: Path) -> Path:
    """Copy the model out of `wheel` into `out` after checking its sha256."""
    wheel_digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    note = "the extracted wheel" if wheel_digest == WHEEL_SHA256 else "another platform's wheel"
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{MEMBER} in {wheel.name}: sha256 {digest}, expected {SHA256}")
    out.mkdir(parents=True, exist_ok=True)
    target = out / Path(MEMBER).name
    target.write_bytes(data)
    print(f"{target} ({len(data):,} bytes, sha256 {digest}) from {wheel.name} ({note})")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded mediapipe 0.10.14 wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.wheel:
        extract(args.wheel, args.out)
        return
    with tempfile.TemporaryDirectory() as folder:
        extract(download_wheel(Path(folder)), args.out)


if __name__ == "__main__":
    main()
