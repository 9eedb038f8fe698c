"""`facestudio faces`: results on real photos, and every kind of bad input handled cleanly.

Bad input means exit code 2, one line on stderr naming the problem, no traceback and no
output file. Odd but valid input (grayscale, 16-bit, RGBA, CMYK, EXIF-rotated) gives faces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facestudio.interfaces.cli import main
from tests.conftest import shared_file

FACE_PHOTO = "data/deepface/id04/img16.jpg"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["faces", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _photo() -> Image.Image:
    return Image.open(shared_file(FACE_PHOTO)).convert("RGB")


def test_lists_faces_as_json_and_draws_them(tmp_path, capsys):
    drawn, report = tmp_path / "drawn.png", tmp_path / "faces.json"
    code, out, _ = run_cli(
        capsys,
        str(shared_file("data/groups/bbt3.jpg")),
        "--json",
        str(report),
        "--draw",
        str(drawn),
    )
    assert code == 0 and "5 face(s)" in out
    data = json.loads(report.read_text())
    assert data["backend"] == "dlib" and len(data["images"][0]["faces"]) == 5
    face = data["images"][0]["faces"][0]
    assert set(face) >= {"index", "box", "score", "landmarks"} and len(face["landmarks"]) == 5
    assert Image.open(drawn).size == Image.open(shared_file("data/groups/bbt3.jpg")).size


@pytest.mark.parametrize("option", ["--draw", "--json"])
def test_an_output_over_its_own_photo_is_refused_even_with_force(tmp_path, capsys, option):
    photo = tmp_path / "me.png"
    _photo().save(photo)
    before = photo.read_bytes()
    alias = tmp_path / "alias.png"
    alias.symlink_to(photo)
    for target in (photo, alias):
        code, _, err = run_cli(capsys, str(photo), option, str(target), "--force")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "input" in err, err
    assert photo.read_bytes() == before


def test_json_to_stdout_and_the_example_photo(capsys):
    code, out, _ = run_cli(capsys, "--example", "--json", "-")
    assert code == 0
    assert len(json.loads(out)["images"][0]["faces"]) == 1


def test_compare_same_and_different_people(capsys):
    same = run_cli(
        capsys,
        "--compare",
        str(shared_file(FACE_PHOTO)),
        str(shared_file("data/deepface/id04/img17.jpg")),
        "--json",
        "-",
    )
    other = run_cli(
        capsys,
        "--compare",
        str(shared_file(FACE_PHOTO)),
        str(shared_file("data/deepface/id03/img3.jpg")),
        "--json",
        "-",
    )
    assert same[0] == other[0] == 0
    same_result, other_result = json.loads(same[1]), json.loads(other[1])
    assert same_result["same_person"] is True and other_result["same_person"] is False
    assert same_result["similarity"] > other_result["similarity"]


def test_compare_with_onnx_backend(capsys):
    code, out, _ = run_cli(
        capsys,
        "--compare",
        str(shared_file(FACE_PHOTO)),
        str(shared_file("data/deepface/id04/img17.jpg")),
        "--backend",
        "onnx",
        "--detector-model",
        str(shared_file("models/face_detection_yunet_2026may.onnx")),
        "--recognizer-model",
        str(shared_file("models/mobilefacenet.onnx")),
        "--json",
        "-",
    )
    assert (
        code == 0
        and json.loads(out)["same_person"] is True
        and json.loads(out)["backend"] == "onnx"
    )


def test_identity_warns_about_a_photo_of_someone_else(capsys):
    photos = [str(shared_file(f"data/deepface/id05/img{n}.jpg")) for n in (13, 14, 15)]
    code, out, err = run_cli(
        capsys, "--identity", *photos, str(shared_file("data/deepface/id06/img29.jpg"))
    )
    assert code == 0 and "consistency" in out
    assert "warning" in err and "id06/img29.jpg" in err and "someone other" in err


def test_several_faces_in_a_compared_photo_are_named(capsys):
    code, _, err = run_cli(
        capsys,
        "--compare",
        str(shared_file("data/groups/couple.jpg")),
        str(shared_file(FACE_PHOTO)),
    )
    assert code == 0 and "has 2 faces; using face 0" in err


def _bad_files(tmp_path) -> dict:
    files = {}
    files["missing"] = (tmp_path / "missing.jpg", "no such file")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    files["not an image"] = (text, "not an image format")
    cut = tmp_path / "cut.jpg"
    data = shared_file(FACE_PHOTO).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    files["truncated"] = (cut, "truncated")
    empty = tmp_path / "empty.jpg"
    empty.touch()
    files["zero bytes"] = (empty, "empty")
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(dot)
    files["1x1"] = (dot, "too small")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 8_000)).save(bomb)  # 80 MP, a few kB on disk
    files["decompression bomb"] = (bomb, "over the 64 MP limit")
    return files


@pytest.mark.parametrize(
    "kind", ["missing", "not an image", "truncated", "zero bytes", "1x1", "decompression bomb"]
)
def test_bad_files_exit_2_with_one_line_and_no_output(kind, tmp_path, capsys):
    path, message = _bad_files(tmp_path)[kind]
    out_json, out_png = tmp_path / "out.json", tmp_path / "out.png"
    code, _, err = run_cli(capsys, str(path), "--json", str(out_json), "--draw", str(out_png))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("facestudio: error:") and message in err
    assert not out_json.exists() and not out_png.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_photo_without_a_face(tmp_path, capsys):
    white = str(shared_file("data/misc/white.png"))
    code, out, err = run_cli(capsys, white, "--json", "-")
    assert code == 0 and json.loads(out)["images"][0]["faces"] == [] and "no face found" in err
    report = tmp_path / "cmp.json"
    code, _, err = run_cli(
        capsys, "--compare", white, str(shared_file(FACE_PHOTO)), "--json", str(report)
    )
    assert code == 2 and "no face found in" in err and err.count("\n") == 1 and not report.exists()


def _variants(tmp_path) -> dict:
    photo = _photo()
    paths = {}
    paths["grayscale"] = tmp_path / "gray.png"
    photo.convert("L").save(paths["grayscale"])
    paths["16-bit"] = tmp_path / "gray16.png"
    gray16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(paths["16-bit"])
    paths["32-bit RGBA"] = tmp_path / "rgba.png"
    rgba = photo.convert("RGBA")
    alpha = np.full((photo.height, photo.width), 255, np.uint8)
    alpha[:, : photo.width // 8] = 0  # a transparent strip, as in a cut-out
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(paths["32-bit RGBA"])
    paths["CMYK JPEG"] = tmp_path / "cmyk.jpg"
    photo.convert("CMYK").save(paths["CMYK JPEG"], quality=95)
    paths["EXIF-rotated"] = tmp_path / "rotated.jpg"
    stored = photo.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = stored.getexif()
    exif[0x0112] = 6  # viewers rotate it 90° clockwise, back upright
    stored.save(paths["EXIF-rotated"], exif=exif, quality=95)
    return paths


@pytest.mark.parametrize(
    "kind", ["grayscale", "16-bit", "32-bit RGBA", "CMYK JPEG", "EXIF-rotated"]
)
def test_odd_but_valid_photos_give_the_same_person(kind, tmp_path, capsys):
    path = _variants(tmp_path)[kind]
    code, out, err = run_cli(
        capsys, "--compare", str(path), str(shared_file(FACE_PHOTO)), "--json", "-"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["same_person"] is True, result


def test_exif_rotated_faces_are_reported_upright(tmp_path, capsys):
    path = _variants(tmp_path)["EXIF-rotated"]
    code, out, _ = run_cli(capsys, str(path), "--json", "-")
    image = json.loads(out)["images"][0]
    width, height = _photo().size
    assert code == 0 and (image["width"], image["height"]) == (width, height) and image["faces"]


def test_the_shared_32_bit_png(capsys):
    code, out, _ = run_cli(capsys, str(shared_file("data/misc/32bit.png")), "--json", "-")
    assert code == 0 and len(json.loads(out)["images"][0]["faces"]) >= 1


def test_existing_output_is_not_overwritten_without_force(tmp_path, capsys):
    report = tmp_path / "faces.json"
    report.write_text("precious")
    code, _, err = run_cli(capsys, str(shared_file(FACE_PHOTO)), "--json", str(report))
    assert code == 2 and "already exists" in err and "--force" in err
    assert report.read_text() == "precious"
    code, _, _ = run_cli(capsys, str(shared_file(FACE_PHOTO)), "--json", str(report), "--force")
    assert code == 0 and json.loads(report.read_text())["images"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one or more IMAGE"),
        (["--backend", "onnx", "PHOTO"], "needs a detector model"),
        (["--draw", "a.png", "x.jpg", "y.jpg"], "--draw takes one image"),
    ],
)
def test_usage_mistakes_are_one_line_errors(args, message, capsys):
    args = [str(shared_file(FACE_PHOTO)) if arg == "PHOTO" else arg for arg in args]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_installed_command_exits_2_without_traceback(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    env_cache = {"FACESTUDIO_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "facestudio.interfaces.cli", "faces", str(broken)],
        capture_output=True,
        text=True,
        env={**os.environ, **env_cache},
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_every_subcommand_has_help(capsys):
    for command in (["faces", "--help"], ["cache", "--help"], ["--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out
