"""Invisible watermark robustness by image size: the smallest size at which the mark survives.

For each side length and each of invisible-watermark's DWT-DCT methods, embeds FaceStudio's
48-bit mark in square crops of real photos, then attacks them (JPEG quality 80, a 0.75×
resize, both) and decodes with `facestudio.provenance.watermark.detect`'s rule (an image
resized by 0.75 is scaled back by 1/0.75 before decoding). "Survives" means every image kept
at least the detection threshold (90 %) of its bits. Sides below 256 are below the library's
own floor (256×256 pixels); they are measured by calling its embedder directly, to show
where the method itself stops working. Also reports PSNR of the embedding and its time.

    python benchmarks/watermark_robustness.py [--images 12] [--out benchmarks/results/watermark_robustness.json]
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from pathlib import Path

import numpy as np
from imwatermark.dwtDctSvd import EmbedDwtDctSvd
from imwatermark.maxDct import EmbedMaxDct
from PIL import Image

from facestudio.provenance import watermark
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SIDES = (64, 96, 128, 160, 192, 224, 256, 320, 384, 512, 768)
METHODS = {"dwtDct": EmbedMaxDct, "dwtDctSvd": EmbedDwtDctSvd}
SCALES = {"dwtDct": [0, 36, 36], "dwtDctSvd": [0, 36, 0]}  # the library's defaults
ATTACKS = ("none", "jpeg80", "resize0.75", "jpeg80+resize0.75")


def photos(count: int) -> list[Image.Image]:
    paths = sorted((SHARED / "data/groups").glob("*.jpg")) + sorted(
        (SHARED / "data/deepface").glob("*/*.jpg")
    )[::5]
    if not paths:
        raise SystemExit(f"no photos under {SHARED / 'data'}")
    return [Image.open(p).convert("RGB") for p in paths[:count]]


def square(image: Image.Image, side: int) -> np.ndarray:
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    crop = image.crop((left, top, left + short, top + short))
    return np.asarray(crop.resize((side, side), Image.Resampling.LANCZOS))


def embed(rgb: np.ndarray, method: str) -> np.ndarray:
    embedder = METHODS[method](watermark._bits(), wmLen=48, scales=SCALES[method])
    marked = embedder.encode(np.ascontiguousarray(rgb[:, :, ::-1]))
    return np.clip(np.round(marked), 0, 255).astype(np.uint8)[:, :, ::-1].copy()


def attack(rgb: np.ndarray, name: str) -> np.ndarray:
    image = Image.fromarray(rgb)
    if "jpeg80" in name:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        image = Image.open(buffer).convert("RGB")
    if "resize0.75" in name:
        size = (round(image.width * 0.75), round(image.height * 0.75))
        image = image.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image)


def bit_accuracy(rgb: np.ndarray, original_side: int, method: str) -> float:
    """Decode as `detect` does: scale back to the embedding size first."""
    if rgb.shape[0] != original_side:
        rgb = np.asarray(
            Image.fromarray(rgb).resize((original_side, original_side), Image.Resampling.BICUBIC)
        )
    decoder = METHODS[method](watermarks=[], wmLen=48, scales=SCALES[method])
    bits = decoder.decode(np.ascontiguousarray(rgb[:, :, ::-1]))
    return float(np.mean(np.asarray(bits, dtype=int) == np.asarray(watermark._bits())))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def measure(images: list[Image.Image], side: int, method: str) -> dict:
    accuracies: dict[str, list[float]] = {a: [] for a in ATTACKS}
    quality, seconds = [], 0.0
    for image in images:
        original = square(image, side)
        start = time.perf_counter()
        marked = embed(original, method)
        seconds += time.perf_counter() - start
        quality.append(psnr(original, marked))
        for name in ATTACKS:
            accuracies[name].append(bit_accuracy(attack(marked, name), side, method))
    result = {
        attack_name: {
            "min_bit_accuracy": round(min(values), 3),
            "mean_bit_accuracy": round(float(np.mean(values)), 3),
            "detected": sum(v >= watermark.DETECTION_THRESHOLD for v in values),
        }
        for attack_name, values in accuracies.items()
    }
    survives = all(r["detected"] == len(images) for r in result.values())
    return {
        "side": side,
        "method": method,
        "attacks": result,
        "survives_all": survives,
        "psnr_db_mean": round(float(np.mean(quality)), 2),
        "embed_ms_per_image": round(1000 * seconds / len(images), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--out", default="benchmarks/results/watermark_robustness.json")
    args = parser.parse_args()
    images = photos(args.images)
    rows = [measure(images, side, method) for method in METHODS for side in SIDES]
    print(f"{'method':10} {'side':>5} " + " ".join(f"{a:>18}" for a in ATTACKS) + "  PSNR  ms")
    for row in rows:
        cells = " ".join(
            f"{row['attacks'][a]['detected']:>3}/{len(images)} min {row['attacks'][a]['min_bit_accuracy']:.2f}"
            .rjust(18)
            for a in ATTACKS
        )
        print(
            f"{row['method']:10} {row['side']:>5} {cells} {row['psnr_db_mean']:5.1f} "
            f"{row['embed_ms_per_image']:5.1f}"
        )
    smallest = {
        method: next(
            (
                row["side"]
                for i, row in enumerate(rows)
                if row["method"] == method
                and all(r["survives_all"] for r in rows[i:] if r["method"] == method)
            ),
            None,
        )
        for method in METHODS
    }
    print(f"smallest side surviving every attack on every image: {smallest}")
    write_report(
        {
            "images": len(images),
            "payload_bits": 48,
            "detection_threshold": watermark.DETECTION_THRESHOLD,
            "library_min_pixels": watermark.MIN_LIBRARY_PIXELS,
            "smallest_surviving_side": smallest,
            "used": {"method": watermark.METHOD, "min_side": watermark.MIN_WATERMARK_SIDE},
            "rows": rows,
            "machine": platform.platform(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
