"""`facestudio prepare --ray`: on a local two-CPU Ray cluster the shards, reports and index are
byte-identical to a one-process run, a partial or damaged folder resumes, the bar counts the
photos, and without Ray the flag is one line naming the install command, before any write."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from facestudio.data.distribute import INSTALL, RayConfig, prepare_on_ray
from facestudio.data.prepare import PrepareConfig, prepare, write_index
from facestudio.faces import FaceAnalyzer, FaceAnalyzerConfig
from facestudio.interfaces.cli import main
from tests.data.test_prepare import photo_folder, write_photo_folder  # noqa: F401

# No cache: the Ray workers compute every face themselves instead of reading the plain run's.
ANALYSIS = FaceAnalyzerConfig(cache_dir=None)
CONFIG = PrepareConfig(resolution=64, shard_size=2)
# One photo per task: every two-photo shard is put together from two tasks.
CLUSTER = RayConfig(photos_per_task=1)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster of two CPUs for the module (Ray takes seconds to start)."""
    if os.environ.get("CI"):
        import ray
    else:
        ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """The photos, and the folder one process prepared from them: every Ray run's reference."""
    photos = write_photo_folder(tmp_path_factory.mktemp("photos") / "photos")
    out = tmp_path_factory.mktemp("plain") / "prepared"
    prepare([str(photos)], out, FaceAnalyzer(ANALYSIS), CONFIG, progress=False)
    write_index(out, CONFIG, FaceAnalyzer(ANALYSIS))
    return photos, out


def _contents(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_ray_shards_are_byte_identical_to_one_process(ray_cluster, plain_run, tmp_path):
    photos, plain = plain_run
    out = tmp_path / "prepared"
    counts = prepare_on_ray([str(photos)], out, ANALYSIS, CONFIG, CLUSTER, progress=False)
    write_index(out, CONFIG, FaceAnalyzer(ANALYSIS))
    assert counts["shards_prepared"] == 5 and counts["images_processed"] == 9
    assert len([name for name in _contents(plain) if name.endswith(".tar")]) == 5
    assert _contents(out) == _contents(plain)  # shards, reports, index and mark


def test_ray_run_resumes_a_partial_folder(ray_cluster, plain_run, tmp_path):
    photos, plain = plain_run
    out = tmp_path / "prepared"
    shutil.copytree(plain, out)
    (out / "index.json").unlink()
    for name in ("shard-00002.tar", "shard-00002.json", "shard-00004.json"):
        (out / name).unlink()  # never made, or killed before its report
    tar = out / "shard-00001.tar"
    tar.write_bytes(tar.read_bytes()[:1000])  # truncated
    (out / ".shard-00003.tar.tmp").write_bytes(b"left by a killed run")
    (out / "shard-00003.tar").unlink()
    kept = {name: (out / name).stat().st_mtime_ns for name in ("shard-00000.tar",)}

    counts = prepare_on_ray([str(photos)], out, ANALYSIS, CONFIG, CLUSTER, progress=False)
    write_index(out, CONFIG, FaceAnalyzer(ANALYSIS))
    assert counts["shards_done_before"] == 1 and counts["shards_prepared"] == 4
    assert counts["images_processed"] == 7
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept
    assert _contents(out) == _contents(plain)
    again = prepare_on_ray([str(photos)], out, ANALYSIS, CONFIG, CLUSTER, progress=False)
    assert again["images_processed"] == 0 and again["shards_done_before"] == 5


def test_cli_on_ray_prints_the_summary_and_counts(ray_cluster, plain_run, tmp_path, capsys):
    photos, plain = plain_run
    out = tmp_path / "prepared"
    args = ["prepare", str(photos), "--out", str(out), "--resolution", "64", "--shard-size", "2"]
    assert main([*args, "--no-cache", "--ray", "auto"]) == 0  # the module's cluster
    captured = capsys.readouterr()
    assert "kept 4" in captured.out and "unreadable 3, no_face 1, face_too_small 1" in captured.out
    assert "prepare[ray]: 100%" in captured.err and "9/9" in captured.err
    tars = sorted(path.name for path in out.glob("shard-*.tar"))
    assert tars and all((out / n).read_bytes() == (plain / n).read_bytes() for n in tars)


def test_ray_missing_is_one_line_before_any_write(photo_folder, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    out = tmp_path / "prepared"
    assert main(["prepare", str(photo_folder), "--out", str(out), "--ray", "auto"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and INSTALL in err and "--ray" in err
    assert not out.exists()


def test_ray_under_accelerate_is_refused(photo_folder, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "prepared"
    assert main(["prepare", str(photo_folder), "--out", str(out), "--ray", "auto"]) == 2
    assert "accelerate" in capsys.readouterr().err and not out.exists()
