"""The PyTorch port of dlib's face descriptor against dlib itself: agreement, verification, speed.

On every photo of the small labelled sets in ../shared/data and of the LFW 2,000-pair sample
(the one `face_verification.py` scores), the largest face is found by the dlib backend, and
dlib's descriptor is compared with `DlibResNetEncoder` fed three ways:
- `dlib_chip`: dlib's own aligned chip (`dlib.get_face_chip`: the network alone);
- `align_dlib_points`: `face_chip.align_chips` from dlib's 5 shape points (exact geometry);
- `align_landmarks`: the same from the 5 landmarks the package stores (eye centres, nose).
Then LFW verification ROC AUC with each, and the time per face of dlib and of the batched
encoder on this CPU.

    python benchmarks/face_encoder_port.py [--out benchmarks/results/face_encoder_port.json]
        [--cache-dir DIR]   # keep dlib's results (chips, points, descriptors) between runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facestudio.evaluation.verification import load_manifest_sets, roc_auc, sample_pairs
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.images import load_image
from facestudio.model.face_chip import align_chips
from facestudio.model.face_encoder import DlibResNetEncoder
from report import write_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WAYS = ("dlib_chip", "align_dlib_points", "align_landmarks")


def photo_list() -> tuple[list[str], list[tuple[str, str, bool]]]:
    """Photos of the small sets and of the LFW test pairs, and those pairs."""
    sets = load_manifest_sets(SHARED / "data/MANIFEST.json")
    pairs = sample_pairs(sets.pop("lfw"), 1000, 1000, seed=0)
    small = {p for people in sets.values() for photos in people.values() for p in photos}
    return sorted(small | {p for a, b, _ in pairs for p in (a, b)}), pairs


def dlib_record(analyzer: FaceAnalyzer, shapes, path: str) -> dict | None:
    """dlib's view of the largest face: descriptor, chip, shape points, package landmarks."""
    import dlib

    image = load_image(path, analyzer.config.image)
    faces = analyzer.detect(image)
    if not faces:
        return None
    shape = shapes(image, dlib.rectangle(*(round(v) for v in faces[0].box)))
    return {
        "descriptor": analyzer.backend.embed(image, faces[0]).astype(np.float64),
        "chip": dlib.get_face_chip(image, shape, 150, 0.25),
        "points": np.array([(p.x, p.y) for p in shape.parts()], np.float64),
        "landmarks": faces[0].landmarks.astype(np.float64),
    }


def dlib_records(paths: list[str], cache_dir: Path | None) -> dict[str, dict | None]:
    cache = cache_dir / "dlib_records.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as npz:
            stored = {key: npz[key] for key in npz.files}  # each read loads a whole array
        if list(stored["paths"]) == paths:
            return {p: _unpack(stored, k) for k, p in enumerate(paths)}
    import dlib
    import face_recognition_models as models

    analyzer = FaceAnalyzer(FaceAnalyzerConfig(backend="dlib"))
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    records = {}
    for k, path in enumerate(paths):
        records[path] = dlib_record(analyzer, shapes, path)
        if k % 100 == 0:
            print(f"dlib: {k}/{len(paths)} photos", file=sys.stderr)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, paths=np.array(paths), **_pack(records, paths))
    return records


def _pack(records: dict, paths: list[str]) -> dict[str, np.ndarray]:
    found = np.array([records[p] is not None for p in paths])
    blank = {
        "descriptor": np.zeros(128),
        "chip": np.zeros((150, 150, 3), np.uint8),
        "points": np.zeros((5, 2)),
        "landmarks": np.zeros((5, 2)),
    }
    packed = {key: np.stack([(records[p] or blank)[key] for p in paths]) for key in blank}
    return {"found": found, **packed}


def _unpack(stored: dict, k: int) -> dict | None:
    if not stored["found"][k]:
        return None
    return {key: stored[key][k] for key in ("descriptor", "chip", "points", "landmarks")}


def torch_descriptors(encoder, paths: list[str], records: dict, pixels_per_batch=4e6) -> dict:
    """Raw descriptors of each found face, the three ways (photos of one size batched)."""
    found = [p for p in paths if records[p] is not None]
    out = {way: {} for way in WAYS}
    for group in size_batches(found, pixels_per_batch):
        images = np.stack([load_image(p) for p in group])
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        chips = torch.from_numpy(np.stack([records[p]["chip"] for p in group]))
        with torch.no_grad():
            raw = encoder(chips.permute(0, 3, 1, 2).float() / 255)
            out["dlib_chip"].update(zip(group, raw.numpy(), strict=True))
            for way, key, layout in (
                ("align_dlib_points", "points", "dlib"),
                ("align_landmarks", "landmarks", "faces"),
            ):
                points = torch.from_numpy(np.stack([records[p][key] for p in group]))
                raw = encoder(align_chips(pixels, points, layout))
                out[way].update(zip(group, raw.numpy(), strict=True))
    return out


def size_batches(paths: list[str], pixels_per_batch: float) -> list[list[str]]:
    """Photos grouped by size (read from the headers), each batch within a pixel budget."""
    from PIL import Image

    by_size: dict[tuple[int, int], list[str]] = {}
    for path in paths:
        with Image.open(path) as image:  # load_image turns photos upright by their EXIF
            turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            size = image.size[::-1] if turned else image.size
        by_size.setdefault(size, []).append(path)
    batches = []
    for (width, height), group in by_size.items():
        step = max(1, min(32, int(pixels_per_batch // (width * height))))
        batches += [group[k : k + step] for k in range(0, len(group), step)]
    return batches


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def agreement(records: dict, ours: dict) -> dict:
    report = {}
    for way in WAYS:
        values = np.array([cosine(records[p]["descriptor"], v) for p, v in ours[way].items()])
        norms = np.array(
            [
                np.linalg.norm(v) / np.linalg.norm(records[p]["descriptor"])
                for p, v in ours[way].items()
            ]
        )
        report[way] = {
            "faces": len(values),
            "mean_cosine": round(float(values.mean()), 6),
            "min_cosine": round(float(values.min()), 6),
            "p01_cosine": round(float(np.percentile(values, 1)), 6),
            "mean_norm_ratio": round(float(norms.mean()), 6),
        }
    return report


def lfw_auc(pairs, vectors: dict) -> dict:
    """ROC AUC of cosine similarity over the pairs whose two photos both have a face."""
    scored = [
        (same, cosine(vectors[a], vectors[b]))
        for a, b, same in pairs
        if a in vectors and b in vectors
    ]
    labels, scores = zip(*scored, strict=True)
    return {"auc": round(roc_auc(labels, scores), 6), "pairs": len(scored)}


def verification(pairs, records: dict, ours: dict) -> dict:
    dlib_vectors = {p: r["descriptor"] for p, r in records.items() if r is not None}
    report = {"dlib": lfw_auc(pairs, dlib_vectors)}
    for way in WAYS:
        report[way] = lfw_auc(pairs, ours[way])
        report[way]["auc_minus_dlib"] = round(report[way]["auc"] - report["dlib"]["auc"], 6)
    return report


def timed(run, count: int, repeats: int = 3) -> dict:
    """Per-item CPU (process) and wall seconds of `run()`, best of `repeats`.

    CPU time is the fair measure on a shared machine; wall time is what one user waits.
    """
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run()
        cpu.append((time.process_time() - start_cpu) / count)
        wall.append((time.perf_counter() - start_wall) / count)
    return {"cpu_s": round(min(cpu), 5), "wall_s": round(min(wall), 5)}


def speed(encoder, paths: list[str], records: dict, faces: int = 32) -> dict:
    """Seconds per face: dlib's network on its chips one by one, the encoder batched."""
    import dlib
    import face_recognition_models as models

    recognizer = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    sample = [p for p in paths if records[p] is not None and "/lfw/" in p][:faces]
    chips = [np.ascontiguousarray(records[p]["chip"]) for p in sample]
    batch = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255
    images = torch.stack([torch.from_numpy(load_image(p).copy()) for p in sample])
    images = images.permute(0, 3, 1, 2).float() / 255
    landmarks = torch.from_numpy(np.stack([records[p]["landmarks"] for p in sample]))
    recognizer.compute_face_descriptor(chips[0])  # warm-up
    report = {
        "faces": len(sample),
        "torch_threads": torch.get_num_threads(),
        "dlib_network_per_face": timed(
            lambda: [recognizer.compute_face_descriptor(c) for c in chips], len(chips)
        ),
    }
    with torch.no_grad():
        encoder(batch[:4])  # warm-up
        report["torch_network_per_face"] = timed(lambda: encoder(batch), len(sample))
        report["torch_align_and_network_per_face"] = timed(
            lambda: encoder.identity_embedding(images, landmarks), len(sample)
        )
    return report


def compare_weights(weights: Path, paths: list[str], pairs, records: dict) -> dict:
    """Agreement with dlib and LFW AUC of other weights, on dlib's own chips."""
    other = DlibResNetEncoder.from_pretrained(weights)
    found = [p for p in paths if records[p] is not None]
    with torch.no_grad():
        chips = torch.from_numpy(np.stack([records[p]["chip"] for p in found]))
        raw = torch.cat([other(c.permute(0, 3, 1, 2).float() / 255) for c in chips.split(64)])
    vectors = dict(zip(found, raw.numpy(), strict=True))
    values = np.array([cosine(records[p]["descriptor"], v) for p, v in vectors.items()])
    return {
        "weights": weights.name,
        "faces": len(values),
        "mean_cosine": round(float(values.mean()), 6),
        "min_cosine": round(float(values.min()), 6),
        "lfw_2000_auc": lfw_auc(pairs, vectors)["auc"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/face_encoder_port.json")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--weights", default=None, help="safetensors file (default: shipped)")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="other weights for the same network (e.g. convert_faceapi.py's): on dlib's chips",
    )
    args = parser.parse_args()
    encoder = DlibResNetEncoder.from_pretrained(args.weights)
    paths, pairs = photo_list()
    records = dlib_records(paths, args.cache_dir)
    ours = torch_descriptors(encoder, paths, records)
    report = {
        "photos": len(paths),
        "faces_found": sum(r is not None for r in records.values()),
        "weights": args.weights or "shipped",
        "cosine_to_dlib": agreement(records, ours),
        "lfw_2000": verification(pairs, records, ours),
        "speed": speed(encoder, paths, records),
    }
    if args.compare is not None:
        report["compare"] = compare_weights(args.compare, paths, pairs, records)
    print(f"{'input':20} {'faces':>6} {'mean cos':>9} {'min cos':>9} {'LFW AUC':>8}")
    print(
        f"{'dlib':20} {report['faces_found']:6d} {1:9.6f} {1:9.6f} "
        f"{report['lfw_2000']['dlib']['auc']:8.5f}"
    )
    for way in WAYS:
        c = report["cosine_to_dlib"][way]
        print(
            f"{way:20} {c['faces']:6d} {c['mean_cosine']:9.6f} {c['min_cosine']:9.6f} "
            f"{report['lfw_2000'][way]['auc']:8.5f}"
        )
    if "compare" in report:
        c = report["compare"]
        print(
            f"{c['weights'][:20]:20} {c['faces']:6d} {c['mean_cosine']:9.6f} "
            f"{c['min_cosine']:9.6f} {c['lfw_2000_auc']:8.5f}"
        )
    for key, value in report["speed"].items():
        print(f"{key:36} {value}")
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
