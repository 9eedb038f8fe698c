"""`facestudio prepare`: real photos plus broken files give the right counts by reason,
deterministic shards, all three kinds of source, and a second run that does no work."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestudio.data.prepare import PrepareConfig, prepare, write_index
from facestudio.data.sources import list_items
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.interfaces.cli import main
from tests.conftest import launch_two_cpu_processes, shared_file

GOOD = [
    "deepface/id03/img3.jpg",
    "deepface/id04/img16.jpg",
    "faceapi/amy/amy1.png",
    "face_recognition/biden/biden.jpg",
]


@pytest.fixture
def photo_folder(tmp_path):
    return write_photo_folder(tmp_path / "photos")


def write_photo_folder(folder: Path) -> Path:
    """Four good photos (two in a subfolder), three unreadable files, one photo without a face,
    one whose face is too small, and a text file that is not a photo."""
    (folder / "sub").mkdir(parents=True)
    for i, photo in enumerate(GOOD):
        (
            folder / ("sub" if i % 2 else "") / f"good{i}{shared_file(f'data/{photo}').suffix}"
        ).write_bytes(shared_file(f"data/{photo}").read_bytes())
    data = shared_file(f"data/{GOOD[0]}").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.png").write_text("not an image")
    (folder / "empty.jpg").touch()
    (folder / "white.png").write_bytes(shared_file("data/misc/white.png").read_bytes())
    small = Image.open(shared_file(f"data/{GOOD[1]}")).convert("RGB")
    small.resize((small.width // 6, small.height // 6)).save(folder / "small-face.jpg")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


def _analyzer(cache):
    return FaceAnalyzer(FaceAnalyzerConfig(cache_dir=cache))


def test_counts_by_reason_and_a_second_run_does_no_work(photo_folder, tmp_path, face_cache):
    out = tmp_path / "prepared"
    config = PrepareConfig(resolution=64, shard_size=3, min_face=40)
    first = prepare([str(photo_folder)], out, _analyzer(face_cache), config, progress=False)
    index = write_index(out, config, _analyzer(face_cache))
    found = {item.key for item in list_items([str(photo_folder)])}
    assert len(found) == 9 and first["images_processed"] == 9
    assert index["kept"] == 4
    assert index["skipped"] == {"unreadable": 3, "no_face": 1, "face_too_small": 1}
    assert index["embedding_dim"] == 128 and sum(s["samples"] for s in index["shards"]) == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    second = prepare([str(photo_folder)], out, _analyzer(face_cache), config, progress=False)
    assert second["images_processed"] == 0 and second["shards_done_before"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")} == stamps


def test_samples_hold_what_reconstruction_needs(photo_folder, tmp_path, face_cache):
    out = tmp_path / "prepared"
    config = PrepareConfig(resolution=64, shard_size=100)
    prepare([str(photo_folder)], out, _analyzer(face_cache), config, progress=False)
    with tarfile.open(out / "shard-00000.tar") as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    key = sorted(files)[0].split(".")[0]
    assert {name.split(".", 1)[1] for name in files if name.startswith(key)} == {
        "image.jpg",
        "style.jpg",
        "face.png",
        "mask.png",
        "embedding.npy",
        "json",
    }
    meta = json.loads(files[f"{key}.json"])
    image = np.asarray(Image.open(io.BytesIO(files[f"{key}.image.jpg"])), dtype=float)
    style = np.asarray(Image.open(io.BytesIO(files[f"{key}.style.jpg"])), dtype=float)
    x0, y0, x1, y1 = (round(v) for v in meta["box"])
    # The face is masked out of the style input; away from the face the two images agree.
    assert np.abs(style[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] - 127).mean() < 3
    assert np.abs(style[:, :4] - image[:, :4]).mean() < 3
    embedding = np.load(io.BytesIO(files[f"{key}.embedding.npy"]), allow_pickle=False)
    assert embedding.shape == (128,) and abs(np.linalg.norm(embedding) - 1) < 1e-4
    assert Image.open(io.BytesIO(files[f"{key}.face.png"])).size == (112, 112)
    assert np.asarray(Image.open(io.BytesIO(files[f"{key}.mask.png"]))).max() == 255


def test_output_is_deterministic(photo_folder, tmp_path, face_cache):
    config = PrepareConfig(resolution=64, shard_size=2)
    for name in ("a", "b"):
        prepare([str(photo_folder)], tmp_path / name, _analyzer(face_cache), config, progress=False)
    for shard in sorted((tmp_path / "a").glob("shard-*.tar")):
        assert shard.read_bytes() == (tmp_path / "b" / shard.name).read_bytes()


def test_tar_shards_and_manifests_are_sources(photo_folder, tmp_path, face_cache):
    shard = tmp_path / "input-000.tar"
    with tarfile.open(shard, "w") as archive:
        for i, photo in enumerate(GOOD[:2]):
            archive.add(shared_file(f"data/{photo}"), arcname=f"sample{i}.jpg")
        archive.add(photo_folder / "notes.png", arcname="sample9.jpg")
    manifest = tmp_path / "list.jsonl"
    manifest.write_text(
        "\n".join(json.dumps({"path": str(shared_file(f"data/{p}"))}) for p in GOOD[2:])
    )
    out = tmp_path / "prepared"
    config = PrepareConfig(resolution=64)
    prepare([str(shard), str(manifest)], out, _analyzer(face_cache), config, progress=False)
    index = write_index(out, config, _analyzer(face_cache))
    assert index["kept"] == 4 and index["skipped"]["unreadable"] == 1


def test_cli_prints_the_summary(photo_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "prepared"
    assert main(["prepare", str(photo_folder), "--out", str(out), "--resolution", "64"]) == 0
    summary = capsys.readouterr().out
    assert "kept 4" in summary and "unreadable 3, no_face 1, face_too_small 1" in summary
    assert main(["prepare", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_progress_bar_counts_the_images(photo_folder, tmp_path, capsys, monkeypatch, face_cache):
    monkeypatch.setenv("FACESTUDIO_CACHE", face_cache)
    args = ["prepare", str(photo_folder), "--resolution", "64", "--shard-size", "4"]
    assert main([*args, "--out", str(tmp_path / "prepared")]) == 0
    captured = capsys.readouterr()
    # Shown though stderr is no terminal (a log), and apart from the summary on stdout.
    assert re.search(r"prepare\[0\]: 100%.* 9/9 ", captured.err), captured.err
    assert "prepare[" not in captured.out and captured.out.startswith("prepared ")


@pytest.mark.slow
def test_two_processes_share_the_shards(photo_folder, tmp_path):
    out = tmp_path / "prepared"
    launched = launch_two_cpu_processes(
        [
            "prepare",
            str(photo_folder),
            "--out",
            str(out),
            "--resolution",
            "64",
            "--shard-size",
            "2",
        ],
        port=29518,
        env={"FACESTUDIO_CACHE": str(tmp_path / "c")},
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    index = json.loads((out / "index.json").read_text())
    assert index["kept"] == 4 and sum(index["skipped"].values()) == 5
    assert len(index["shards"]) == 5 and launched.stdout.count("prepared ") == 1
