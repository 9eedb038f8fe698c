"""`facestudio inspect` on what `facestudio generate` wrote: label, settings, credentials
(and a pixel edit detected), watermark."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facestudio.interfaces.cli import main
from tests.conftest import shared_file
from tests.provenance.conftest import edit_pixels_keeping_metadata


@pytest.fixture(scope="module")
def generated(tiny_pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect")
    out = tiny_pipeline(
        identities=[str(shared_file("data/deepface/id04/img16.jpg"))],
        num_inference_steps=1,
        seed=11,
    )
    return out.save(0, folder / "me.png")


def test_inspect_reports_label_settings_credentials_and_watermark(generated, capsys):
    assert main(["inspect", str(generated)]) == 0
    printed = capsys.readouterr().out
    assert "generated: yes" in printed and "seed 11" in printed and "img16.jpg" in printed
    assert "content credentials: valid, image unaltered since signing" in printed
    assert "FaceStudio TEST key (untrusted)" in printed
    assert "watermark: not checked (64×64 is too small" in printed
    assert main(["inspect", str(generated), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["generated"] and report["credentials"]["intact"]
    assert report["settings"]["seed"] == 11 and report["settings"]["generated"]


def test_inspect_detects_a_pixel_edit(generated, tmp_path, capsys):
    edited = tmp_path / "edited.png"
    edited.write_bytes(edit_pixels_keeping_metadata(generated.read_bytes()))
    assert main(["inspect", str(edited)]) == 1
    printed = capsys.readouterr().out
    assert "content credentials: INVALID: assertion.dataHash.mismatch" in printed


def test_inspect_an_ordinary_photo_and_bad_paths(tmp_path, capsys):
    assert main(["inspect", str(shared_file("data/deepface/id04/img16.jpg"))]) == 0
    printed = capsys.readouterr().out
    assert "no sign of FaceStudio generation" in printed and "credentials: none" in printed
    for path, message in ((tmp_path, "it is a folder"), (tmp_path / "no.png", "no such file")):
        assert main(["inspect", str(path)]) == 2
        assert message in capsys.readouterr().err


def test_a_saved_output_refuses_to_overwrite(generated):
    from PIL import Image

    from facestudio.errors import FaceStudioError
    from facestudio.provenance.save import save_image

    image = Image.open(generated)
    with pytest.raises(FaceStudioError, match="already exists"):
        save_image(image, generated)
    with pytest.raises(FaceStudioError, match=r"must end in \.png"):
        save_image(image, generated.with_suffix(".jpg"))
    assert np.asarray(image).shape == (64, 64, 3)
