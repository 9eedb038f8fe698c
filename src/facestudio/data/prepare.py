"""`prepare`: photos -> reconstruction samples in WebDataset tar shards.

Per photo (the paper's training by reconstruction): the face-centred image, the face box, the
style input (the image with the face masked out), the aligned face crop, the identity
embedding and the person mask. Photos without a usable face are skipped and counted by reason.

Items are split into shards of `shard_size` in a fixed order; process p of P prepares shards
p, p + P, ... (`facestudio.data.distribute` instead sends the photos to Ray workers and writes
the shards here with `write_shard`). A shard is written to a temporary name and renamed when
complete, together with its report, so an interrupted run resumes by skipping finished shards:
those whose report is whole and whose tar holds the samples it reports (a damaged one is made
again). A shard's bytes depend only on its photos' results, in order (members with mtime 0,
no owner), so every way of running writes the same shards.

The output folder is prepare's own (`outputs.check_own_folder`): new, empty, marked by prepare,
or prepared before the mark existed (an index or shard report of this format). Files in any
other folder are never replaced.
"""

from __future__ import annotations

import json
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from facestudio.configuration import NonNegativeInt, Range, check_dataclass
from facestudio.data import samples
from facestudio.data.samples import PreparedSample, encode_sample
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
from facestudio.files import NotAFile, read_own_file
from facestudio.images import ImageLoadConfig, load_image
from facestudio.outputs import check_own_folder, mark_folder, staged_output, write_bytes_atomic

SKIP_REASONS = ("unreadable", "no_face", "face_too_small")
PREPARE = "prepare"  # the kind of folder, in its mark
_OWN_FILE_LIMIT = 64 * 2**20  # a shard report or index is far smaller
_LOG_REFRESH_S = 30.0  # how often the progress bar writes a line when stderr is not a terminal
T = TypeVar("T")

PORTRAIT_FACE_FRACTION = 0.5
"""How wide the face's ArcFace square is in a training portrait (face, hair and neck): the
framing the model learns, and so the framing evaluation's resolution ceilings use."""


@dataclass(frozen=True)
class PrepareConfig:
    """How samples are made.

    `resolution`: side of the square, face-centred training image. `face_fraction`: width of
    the ArcFace square relative to it (0.5: face, hair and neck). `min_face`: faces narrower
    than this (pixels in the photo) are skipped. `mask_grow`: the masked face box is this much
    larger than the detected box. `keep_faceless`: keep photos without a face (zero identity,
    nothing masked) instead of skipping them. Each field's range is checked before any work
    (`check_dataclass`): a sample side from 32 px (smaller holds no recognisable face) to 4096
    px (past any model's training size), at most 100,000 samples per shard.
    """

    resolution: Annotated[int, Range(32, 4096)] = 256
    face_fraction: Annotated[float, Range(0, 1, low_open=True)] = PORTRAIT_FACE_FRACTION
    min_face: NonNegativeInt = 40
    mask_grow: Annotated[float, Range(1, 4)] = 1.2
    shard_size: Annotated[int, Range(1, 100_000)] = 1000
    keep_faceless: bool = False
    jpeg_quality: Annotated[int, Range(1, 100)] = 95


@dataclass
class ShardReport:
    shard: int
    kept: int
    skipped: dict[str, int]


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def check_prepare_folder(out: str | Path, sources: list[str]) -> Path:
    """Refuse, before any work, an `--out` that prepare may not write into (see the module's
    docstring) or that is one of the `sources` being read."""
    out = check_own_folder(out, PREPARE, _prepared_before_marks)
    resolved = out.resolve()
    for source in sources:
        if Path(source).resolve() == resolved:
            raise FaceStudioError(
                f"output folder '{out}' is the source '{source}'; write to a new folder"
            )
    return out


def _prepared_before_marks(folder: Path) -> bool:
    """A folder prepared before folders were marked: an index of this format, or (from an
    interrupted run) a shard report."""
    index = _read_own_json(folder / samples.INDEX)
    if isinstance(index, dict) and index.get("format") == samples.FORMAT:
        return True
    return any(_is_report(_read_own_json(path)) for path in sorted(folder.glob("shard-*.json")))


def _read_own_json(path: Path):
    """The JSON of a small file prepare wrote, or None when missing, not a file, or damaged."""
    try:
        return json.loads(read_own_file(path, limit=_OWN_FILE_LIMIT))
    except (OSError, NotAFile, ValueError):
        return None


def _read_report(path: Path) -> dict | None:
    """A shard report as prepare writes it, or None when missing or damaged (an interrupted or
    failing write). Something that is not a regular file there is one line: prepare never made
    it, so it is never replaced."""
    try:
        report = json.loads(read_own_file(path, limit=_OWN_FILE_LIMIT))
    except FileNotFoundError:
        return None
    except NotAFile as exc:
        raise FaceStudioError(
            f"'{path}' is {exc}, not a shard report prepare wrote; remove it or choose "
            "another folder"
        ) from None
    except (OSError, ValueError):
        return None
    return report if _is_report(report) else None


def _is_report(report) -> bool:
    return (
        isinstance(report, dict)
        and isinstance(report.get("kept"), int)
        and isinstance(report.get("skipped"), dict)
        and all(isinstance(v, int) for v in report["skipped"].values())
    )


def _shard_done(out: Path, shard: int) -> bool:
    """Whether shard `shard` is finished: a whole report, and a tar holding what it reports."""
    report = _read_report(out / f"{shard_name(shard)}.json")
    if report is None:
        return False
    try:
        return len(samples.shard_members(out / f"{shard_name(shard)}.tar")) == report["kept"]
    except (OSError, tarfile.TarError, EOFError):
        return False


@dataclass(frozen=True)
class ShardPlan:
    """Which photos go into which shard, and which of this process's shards are still to do."""

    items: list[SourceItem]
    shards: list[list[SourceItem]]
    mine: list[int]
    todo: list[int]

    def photos_to_do(self) -> int:
        return sum(len(self.shards[k]) for k in self.todo)

    def counts(self, seconds: float) -> dict:
        """What a run did, as `prepare` returns it."""
        return {
            "items": len(self.items),
            "shards": len(self.shards),
            "shards_done_before": len(self.mine) - len(self.todo),
            "shards_prepared": len(self.todo),
            "images_processed": self.photos_to_do(),
            "seconds": seconds,
        }


def plan_shards(
    sources: list[str],
    out: Path,
    config: PrepareConfig,
    process_index: int = 0,
    num_processes: int = 1,
) -> ShardPlan:
    """Split the sorted photos into shards of `config.shard_size`; process p of P owns shards
    p, p + P, ...; those already finished in `out` are not to do."""
    items = list_items(sources)
    if not items:
        raise FaceStudioError(f"no images found in {', '.join(sources)}")
    size = config.shard_size
    shards = [items[i : i + size] for i in range(0, len(items), size)]
    mine = [k for k in range(len(shards)) if k % num_processes == process_index]
    return ShardPlan(items, shards, mine, [k for k in mine if not _shard_done(out, k)])


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
    config = check_dataclass(config or PrepareConfig(), "the prepare settings")
    out = check_prepare_folder(out, sources)
    plan = plan_shards(sources, out, config, process_index, num_processes)
    mark_folder(out, PREPARE)  # the first write (every process may: it is idempotent)
    start = time.perf_counter()
    with progress_bar(plan.photos_to_do(), f"prepare[{process_index}]", progress) as bar:
        for k in plan.todo:
            results = (prepare_sample(item, analyzer, config) for item in plan.shards[k])
            write_shard(out, k, k * config.shard_size, _counted(results, bar))
    return plan.counts(time.perf_counter() - start)


def progress_bar(total: int, description: str, enabled: bool = True) -> tqdm:
    """A bar over photos on stderr, shown in logs too (a terminal refreshes it often, a log
    file gets a line every `_LOG_REFRESH_S`); its final line gives the count."""
    terminal = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=description,
        unit="image",
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.1 if terminal else _LOG_REFRESH_S,
    )


def _counted(results: Iterable[T], bar: tqdm) -> Iterator[T]:
    for result in results:
        yield result
        bar.update()


def write_shard(
    out: Path, shard: int, first_index: int, results: Iterable[dict[str, bytes] | str]
) -> ShardReport:
    """Write shard `shard` from its photos' results in order (a sample's members, or the reason
    it is skipped), then its report: the tar's bytes depend on nothing else."""
    skipped: Counter = Counter()
    kept = 0
    temporary = out / f".{shard_name(shard)}.tar.tmp"
    with (
        staged_output(out / f"{shard_name(shard)}.tar", temporary),
        tarfile.open(temporary, "w") as archive,
    ):
        for offset, sample in enumerate(results):
            if isinstance(sample, str):
                skipped[sample] += 1
                continue
            samples.add_sample(archive, samples.sample_key(first_index + offset), sample)
            kept += 1
    report = ShardReport(shard, kept, dict(skipped))
    write_bytes_atomic(out / f"{shard_name(shard)}.json", json.dumps(asdict(report)).encode())
    return report


def write_index(out: str | Path, config: PrepareConfig, analyzer: FaceAnalyzer) -> dict:
    """Merge the shard reports into `index.json` (call once, after every process finished)."""
    out = Path(out)
    reports = sorted(out.glob("shard-*.json"))
    shards, skipped, kept = [], Counter(), 0
    for path in reports:
        report = _read_report(path)
        if report is None:
            raise FaceStudioError(
                f"shard report '{path}' is damaged; run prepare again with the same sources to "
                "make that shard again"
            )
        shards.append({"name": f"{path.stem}.tar", "samples": report["kept"]})
        skipped.update(report["skipped"])
        kept += report["kept"]
    index = {
        "format": samples.FORMAT,
        "shards": shards,
        "kept": kept,
        "skipped": {reason: skipped.get(reason, 0) for reason in SKIP_REASONS},
        "prepare": asdict(config),
        "face_backend": analyzer.backend.fingerprint(),
        "face_analysis": analyzer.config.to_dict(),
        "embedding_dim": None,
    }
    for shard in shards:
        path = out / shard["name"]
        found = [m for m in samples.shard_members(path).values() if samples.EMBEDDING in m]
        if found:
            files = samples.read_members(path, found[0], [samples.EMBEDDING])
            index["embedding_dim"] = int(samples.decode_sample(files).embedding.shape[0])
            break
    write_bytes_atomic(out / samples.INDEX, json.dumps(index, indent=2).encode())
    return index


def prepare_sample(
    item: SourceItem, analyzer: FaceAnalyzer, config: PrepareConfig
) -> dict[str, bytes] | str:
    """The members of one sample (`samples.encode_sample`), or the reason it is skipped."""
    return sample_from_photo(item, read_photo(item, analyzer.config.image), analyzer, config)


def read_photo(item: SourceItem, image: ImageLoadConfig) -> bytes | None:
    """The photo's bytes, or None when it cannot be read (it is then skipped as unreadable)."""
    try:
        return item.read(image)
    except (ImageLoadError, OSError):
        return None


def sample_from_photo(
    item: SourceItem, data: bytes | None, analyzer: FaceAnalyzer, config: PrepareConfig
) -> dict[str, bytes] | str:
    """`prepare_sample` from the photo's bytes (`read_photo`), wherever they were read."""
    if data is None:
        return "unreadable"
    try:
        image = load_image(data, analyzer.config.image, name=item.key)
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
    if item.person:
        meta["person"] = item.person
    sample = PreparedSample(
        image=portrait,
        style=style,
        meta=meta,
        embedding=identity.embedding,
        face_crop=align_arcface(image, face.landmarks),
        mask=(mask * 255).astype(np.uint8),
    )
    return encode_sample(sample, config.jpeg_quality)


def _faceless_sample(item, image, size, config) -> dict[str, bytes]:
    """A photo without a face: centre crop, nothing masked, no embedding (training uses zeros)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = cv2.resize(
        image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
    )
    meta = {"source": item.key, "face_present": False, "photo_size": [int(width), int(height)]}
    sample = PreparedSample(
        image=square, style=square, meta=meta, mask=np.zeros((size, size), np.uint8)
    )
    return encode_sample(sample, config.jpeg_quality)


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
