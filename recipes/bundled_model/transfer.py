"""Move a run of the bundled small model to another machine (a GPU lent for a while) and back,
in as few bytes as the training needs.

    python recipes/bundled_model/transfer.py pack-data RUN/prepared-64 PACK/data
    python recipes/bundled_model/transfer.py restore-data PACK/data RUN/prepared-64
    python recipes/bundled_model/transfer.py fp16 RUN/diffusion-exported PACK/model

`pack-data` keeps what training reads: the portrait JPEG bytes, identity embeddings and sample
metadata (about a ninth of a `facestudio prepare` folder: no ArcFace crops or person masks).
`restore-data` rebuilds shards `facestudio train` reads, the style input masked again from
the portrait as `prepare` masks it; portraits, embeddings and metadata come back bit-exact.
`fp16` copies a pipeline folder with its weights stored in fp16 (they load as fp32).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import tarfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.torch import load_file, save_file

from facestudio.data import samples
from facestudio.data.prepare import PrepareConfig
from facestudio.faces.regions import mask_faces

PACKED = (samples.IMAGE, samples.EMBEDDING, samples.META)
"""The members a pack keeps; the style input is masked again from the portrait."""


def pack_data(prepared: Path, dest: Path) -> None:
    """Portraits, embeddings and metadata of a prepared folder, with its index.json."""
    index = samples.read_index(prepared)
    dim = index.get("embedding_dim") or 128
    dest.mkdir(parents=True, exist_ok=True)
    offsets, embeddings, has_embedding, keys = [0], [], [], []
    with open(dest / "images.bin", "wb") as images, gzip.open(dest / "meta.jsonl.gz", "wb") as meta:
        for shard in index["shards"]:
            path = prepared / shard["name"]
            for key, where in samples.shard_members(path).items():  # the order training reads
                files = samples.read_members(path, where, PACKED)
                sample = samples.decode_sample(
                    {k: v for k, v in files.items() if k != samples.IMAGE}
                )
                images.write(files[samples.IMAGE])  # the JPEG bytes, kept bit-exact
                offsets.append(offsets[-1] + len(files[samples.IMAGE]))
                has_embedding.append(sample.has_face)
                embeddings.append(
                    sample.embedding if sample.has_face else np.zeros(dim, np.float32)
                )
                meta.write(json.dumps(sample.meta).encode() + b"\n")
                keys.append(key)
    np.savez(
        dest / "samples.npz",
        offsets=np.asarray(offsets, np.int64),
        embeddings=np.stack(embeddings).astype(np.float32),
        has_embedding=np.asarray(has_embedding),
        keys=np.asarray(keys),
    )
    shutil.copyfile(prepared / samples.INDEX, dest / samples.INDEX)


def restore_data(pack: Path, dest: Path, workers: int = 8) -> None:
    """Shards `facestudio train` reads, rebuilt from `pack_data`'s files."""
    index = json.loads((pack / samples.INDEX).read_text())
    arrays = np.load(pack / "samples.npz", allow_pickle=False)
    with gzip.open(pack / "meta.jsonl.gz", "rb") as handle:
        metas = handle.read().splitlines()
    if len(metas) != len(arrays["keys"]):
        raise SystemExit(
            f"'{pack}' is incomplete: {len(metas)} metadata lines, {len(arrays['keys'])} samples"
        )
    dest.mkdir(parents=True, exist_ok=True)
    jobs, start = [], 0
    for shard in index["shards"]:
        jobs.append((pack, dest / shard["name"], start, start + shard["samples"], index["prepare"]))
        start += shard["samples"]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_restore_shard, jobs))
    (dest / samples.INDEX).write_text(json.dumps(index, indent=2))


def _restore_shard(job: tuple) -> None:
    pack, target, start, stop, prepare = job
    config = PrepareConfig(
        **{k: v for k, v in prepare.items() if k in PrepareConfig.__dataclass_fields__}
    )
    arrays = np.load(pack / "samples.npz", allow_pickle=False)
    offsets = arrays["offsets"]
    with gzip.open(pack / "meta.jsonl.gz", "rb") as handle:
        metas = handle.read().splitlines()[start:stop]
    with open(pack / "images.bin", "rb") as handle:
        handle.seek(int(offsets[start]))
        blob = handle.read(int(offsets[stop] - offsets[start]))
    temporary = target.with_suffix(".tmp")
    with tarfile.open(temporary, "w") as archive:
        for i, line in zip(range(start, stop), metas, strict=True):
            image = blob[int(offsets[i] - offsets[start]) : int(offsets[i + 1] - offsets[start])]
            meta = json.loads(line)
            style = image  # a faceless sample: the style input is the portrait itself
            if "box" in meta:
                pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
                style = mask_faces(pixels, [meta["box"]], config.mask_grow)
            embedding = arrays["embeddings"][i] if arrays["has_embedding"][i] else None
            sample = samples.PreparedSample(image, style, meta, embedding)
            files = samples.encode_sample(sample, config.jpeg_quality)
            samples.add_sample(archive, str(arrays["keys"][i]), files)
    temporary.rename(target)


def copy_as_fp16(files: dict[Path, Path], dest: Path) -> None:
    """Copy `{relative path: source}` under `dest`, safetensors weights stored as fp16."""
    for relative, path in sorted(files.items()):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            tensors = {
                k: v.half() if v.is_floating_point() else v for k, v in load_file(path).items()
            }
            save_file(tensors, target, metadata={"format": "pt"})
        else:
            shutil.copyfile(path, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, first, second in (
        ("pack-data", "prepared", "pack"),
        ("restore-data", "pack", "prepared"),
        ("fp16", "pipeline", "dest"),
    ):
        command = commands.add_parser(name)
        command.add_argument(first)
        command.add_argument(second)
    args = parser.parse_args()
    if args.command == "pack-data":
        pack_data(Path(args.prepared), Path(args.pack))
    elif args.command == "restore-data":
        restore_data(Path(args.pack), Path(args.prepared))
    else:
        source = Path(args.pipeline)
        files = {p.relative_to(source): p for p in source.rglob("*") if p.is_file()}
        copy_as_fp16(files, Path(args.dest))


if __name__ == "__main__":
    main()
