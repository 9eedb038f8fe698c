"""recipes/bundled_model/transfer.py: a run's data packed small and restored for training."""

from __future__ import annotations

import gzip
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facestudio.data.dataset import ReconstructionDataset

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "bundled_model" / "transfer.py"


@pytest.fixture(scope="module")
def transfer():
    # Importable by name, as when the script runs: its worker processes look it up so.
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        yield importlib.import_module("transfer")
    finally:
        sys.path.remove(str(SCRIPT.parent))
        sys.modules.pop("transfer", None)


def test_restored_data_trains_like_the_original(transfer, eight_photos_prepared, tmp_path):
    transfer.pack_data(eight_photos_prepared, tmp_path / "pack")
    packed = sum(p.stat().st_size for p in (tmp_path / "pack").iterdir())
    original_size = sum(p.stat().st_size for p in eight_photos_prepared.glob("*.tar"))
    assert packed < original_size / 3  # no ArcFace crops, masks or tar padding

    transfer.restore_data(tmp_path / "pack", tmp_path / "restored", workers=2)
    original = ReconstructionDataset(eight_photos_prepared)
    restored = ReconstructionDataset(tmp_path / "restored")
    assert len(restored) == len(original) == 8
    for i in range(len(original)):
        a, b = original[i], restored[i]
        for key in ("image", "face", "has_face", "face_box", "index"):
            assert torch.equal(a[key], b[key]), (i, key)
        # The style input is masked again from the decoded portrait: equal up to JPEG noise,
        # and grey where the face was.
        assert (a["style_pixels"] - b["style_pixels"]).abs().mean() < 0.01
        x0, y0, x1, y1 = (int(v) for v in b["face_box"])
        centre = b["style_pixels"][:, (y0 + y1) // 2, (x0 + x1) // 2]
        assert torch.allclose(centre, torch.full((3,), 127 / 255), atol=0.03)
    assert torch.equal(original.face_statistics()[0], restored.face_statistics()[0])


def test_an_incomplete_pack_is_refused(transfer, eight_photos_prepared, tmp_path):
    transfer.pack_data(eight_photos_prepared, tmp_path / "pack")
    meta = tmp_path / "pack" / "meta.jsonl.gz"
    lines = gzip.decompress(meta.read_bytes()).splitlines()
    meta.write_bytes(gzip.compress(b"\n".join(lines[:-1]) + b"\n"))
    with pytest.raises(SystemExit, match="incomplete"):
        transfer.restore_data(tmp_path / "pack", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_fp16_copy_halves_float_weights_only(transfer, tmp_path):
    from safetensors.torch import load_file, save_file

    source = tmp_path / "model" / "part"
    source.mkdir(parents=True)
    save_file({"w": torch.randn(4, 4), "steps": torch.arange(3)}, source / "weights.safetensors")
    (source / "config.json").write_text("{}")
    files = {p.relative_to(tmp_path / "model"): p for p in source.iterdir()}
    transfer.copy_as_fp16(files, tmp_path / "half")
    loaded = load_file(tmp_path / "half" / "part" / "weights.safetensors")
    assert loaded["w"].dtype == torch.float16 and loaded["steps"].dtype == torch.int64
    assert np.allclose(
        loaded["w"].float(), load_file(source / "weights.safetensors")["w"], atol=1e-3
    )
    assert (tmp_path / "half" / "part" / "config.json").read_text() == "{}"
