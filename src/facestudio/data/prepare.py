"""`prepare`: photos -> reconstruction samples in WebDataset tar shards.

Per photo (the paper's training by reconstruction): the face-centred image, the face box, the
style input (the image with the face masked out), the aligned face crop, the identity
embedding and the person mask. Photos without a usable face are skipped and counted by reason.

Items are split into shards of `shard_size` in a fixed order; process p of P prepares shards
p, p + P, ... A shard is written to a temporary name and renamed when complete, together with
its report, so an interrupted run resumes by skipping finished shards.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from facestudio.data.sources import SourceItem, list_items
from facestudio.errors import FaceStudioError, ImageLoadError
from facestudio.faces.alignment import (
    align_arcface,
    portrait_template,
    similarity_matrix,
    warp_to_template,
)
from facestudio.faces.analyzer import FaceAnalyzer
from facestudio.faces.regions import mask_faces, person_region, region_masks
from facestudio.faces.types import Face
from facestudio.images import load_image
from facestudio.outputs import write_bytes_atomic

SKIP_REASONS = ("unreadable", "no_face", "face_too_small")


@dataclass(frozen=True)
class PrepareConfig:
    """How samples are made.

    `resolution`: side of the square, face-centred training image. `face_fraction`: width of
    the ArcFace square relative to it (0.5: face, hair and neck). `min_face`: faces narrower
    than this (pixels in the photo) are skipped. `mask_grow`: the masked face box is this much
    larger than the detected box. `keep_faceless`: keep photos without a face (zero identity,
    nothing masked) instead of skipping them.
    """

    resolution: int = 256
    face_fraction: float = 0.5
    min_face: int = 40
    mask_grow: float = 1.2
    shard_size: int = 1000
    keep_faceless: bool = False
    jpeg_quality: int = 95


@dataclass
class ShardReport:
    shard: int
    kept: int
    skipped: dict[str, int]


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def prepare(
    sources: list[str],
    out: str | Path,
    analyzer: FaceAnalyzer,
    config: PrepareConfig | None = None,
    process_index: int = 0,
    num_processes: int = 1,
    progress: bool = True,
) -> dict:
    """Prepare this process's shards; returns counts of this process's work."""
    config = config or PrepareConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = list_items(sources)
    if not items:
        raise FaceStudioError(f"no images found in {', '.join(sources)}")
    shards = [items[i : i + config.shard_size] for i in range(0, len(items), config.shard_size)]
    mine = [k for k in range(len(shards)) if k % num_processes == process_index]
    todo = [k for k in mine if not (out / f"{shard_name(k)}.json").exists()]
    bar = tqdm(
        total=sum(len(shards[k]) for k in todo),
        desc=f"prepare[{process_index}]",
        unit="image",
        disable=not progress or None,
    )
    start = time.perf_counter()
    processed = 0
    for k in todo:
        report = _prepare_shard(k, shards[k], k * config.shard_size, out, analyzer, config, bar)
        processed += len(shards[k])
        write_bytes_atomic(out / f"{shard_name(k)}.json", json.dumps(asdict(report)).encode())
    bar.close()
    return {
        "items": len(items),
        "shards": len(shards),
        "shards_done_before": len(mine) - len(todo),
        "shards_prepared": len(todo),
        "images_processed": processed,
        "seconds": time.perf_counter() - start,
    }


def write_index(out: str | Path, config: PrepareConfig, analyzer: FaceAnalyzer) -> dict:
    """Merge the shard reports into `index.json` (call once, after every process finished)."""
    out = Path(out)
    reports = sorted(out.glob("shard-*.json"))
    shards, skipped, kept = [], Counter(), 0
    for path in reports:
        report = json.loads(path.read_text())
        shards.append({"name": f"{path.stem}.tar", "samples": report["kept"]})
        skipped.update(report["skipped"])
        kept += report["kept"]
    index = {
        "format": "facestudio-reconstruction-v1",
        "shards": shards,
        "kept": kept,
        "skipped": {reason: skipped.get(reason, 0) for reason in SKIP_REASONS},
        "prepare": asdict(config),
        "face_backend": analyzer.backend.fingerprint(),
        "face_analysis": analyzer.config.to_dict(),
        "embedding_dim": None,
    }
    for shard in shards:
        with tarfile.open(out / shard["name"]) as archive:
            member = next(
                (m for m in archive.getmembers() if m.name.endswith(".embedding.npy")), None
            )
            if member is not None:
                vector = np.load(io.BytesIO(archive.extractfile(member).read()), allow_pickle=False)
                index["embedding_dim"] = int(vector.shape[0])
                break
    write_bytes_atomic(out / "index.json", json.dumps(index, indent=2).encode())
    return index


def _prepare_shard(shard, items, first_index, out, analyzer, config, bar) -> ShardReport:
    skipped: Counter = Counter()
    kept = 0
    temporary = out / f".{shard_name(shard)}.tar.tmp"
    with tarfile.open(temporary, "w") as archive:
        for offset, item in enumerate(items):
            sample = prepare_sample(item, analyzer, config)
            bar.update()
            if isinstance(sample, str):
                skipped[sample] += 1
                continue
            key = f"{first_index + offset:09d}"
            for suffix, data in sample.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(data)
                info.mtime = 0  # byte-identical shards on every run
                archive.addfile(info, io.BytesIO(data))
            kept += 1
    temporary.rename(out / f"{shard_name(shard)}.tar")
    return ShardReport(shard, kept, dict(skipped))


def prepare_sample(
    item: SourceItem, analyzer: FaceAnalyzer, config: PrepareConfig
) -> dict[str, bytes] | str:
    """The files of one sample, or the reason it is skipped."""
    try:
        image = load_image(item.read(), analyzer.config.image, name=item.key)
    except (ImageLoadError, OSError):
        return "unreadable"
    faces = analyzer.analyze(image).faces  # cached by content, as is the embedding below
    size = config.resolution
    if not faces:
        return _faceless_sample(item, image, size, config) if config.keep_faceless else "no_face"
    if faces[0].width < config.min_face:
        return "face_too_small"
    identity = analyzer.identity(image)  # the largest face
    face, index = identity.face, identity.face_index
    template = portrait_template(size, config.face_fraction)
    matrix = similarity_matrix(face.landmarks, template)
    portrait = warp_to_template(image, face.landmarks, template, size)
    moved = _transform_face(face, matrix, size)
    style = mask_faces(portrait, [moved.box], config.mask_grow)
    person = person_region(moved, (size, size))
    mask = region_masks([person], (size, size), (size, size), [moved.center])[0]
    meta = {
        "source": item.key,
        "face_index": index,
        "faces_in_photo": len(faces),
        "face_present": True,
        "box": [round(v, 2) for v in moved.box],
        "landmarks": np.round(moved.landmarks, 2).tolist(),
        "person_box": [round(v, 2) for v in person],
        "photo_size": [int(image.shape[1]), int(image.shape[0])],
    }
    return {
        "image.jpg": jpeg_bytes(portrait, config.jpeg_quality),
        "style.jpg": jpeg_bytes(style, config.jpeg_quality),
        "face.png": _png(align_arcface(image, face.landmarks)),
        "mask.png": _png((mask * 255).astype(np.uint8)),
        "embedding.npy": npy_bytes(identity.embedding),
        "json": json.dumps(meta).encode(),
    }


def _faceless_sample(item, image, size, config) -> dict[str, bytes]:
    """A photo without a face: centre crop, nothing masked, no embedding (training uses zeros)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = cv2.resize(
        image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
    )
    meta = {"source": item.key, "face_present": False, "photo_size": [int(width), int(height)]}
    return {
        "image.jpg": jpeg_bytes(square, config.jpeg_quality),
        "style.jpg": jpeg_bytes(square, config.jpeg_quality),
        "mask.png": _png(np.zeros((size, size), np.uint8)),
        "json": json.dumps(meta).encode(),
    }


def _transform_face(face: Face, matrix: np.ndarray, size: int) -> Face:
    def move(points: np.ndarray) -> np.ndarray:
        return points @ matrix[:, :2].T + matrix[:, 2]

    x0, y0, x1, y1 = face.box
    corners = move(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64))
    box = (
        float(max(0.0, corners[:, 0].min())),
        float(max(0.0, corners[:, 1].min())),
        float(min(size, corners[:, 0].max())),
        float(min(size, corners[:, 1].max())),
    )
    return Face(
        box,
        face.score,
        move(face.landmarks.astype(np.float64)).astype(np.float32),
        face.landmarks_estimated,
    )


def jpeg_bytes(array: np.ndarray, quality: int) -> bytes:
    """An RGB array as a prepared sample stores it (JPEG)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(vector: np.ndarray) -> bytes:
    """An identity embedding as a prepared sample stores it (float32 .npy)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(vector, np.float32), allow_pickle=False)
    return buffer.getvalue()
