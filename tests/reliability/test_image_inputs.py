"""A photo that is not a regular file is named for what it is ("a FIFO", "a folder"), never
"empty (0 bytes)" or "no such file", and is never opened in a way that can block."""

from __future__ import annotations

import pytest

from facestudio.errors import ImageLoadError
from facestudio.images import ImageLoadConfig, load_image, read_image_file
from tests.conftest import shared_file
from tests.reliability.helpers import (
    FACE,
    assert_refused,
    fifo,
    link_to_fifo,
    run,
    zero_device,
)

KINDS = {
    "FIFO": (fifo, "a FIFO"),
    "folder": (lambda p: p.mkdir() or p, "a folder"),
    "zero device": (zero_device, "a character device"),
    "link to a FIFO": (link_to_fifo, "a FIFO"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_faces_names_what_a_photo_is(kind, tmp_path, capsys):
    make, words = KINDS[kind]
    photo = make(tmp_path / "photo.jpg")
    assert_refused(run(capsys, "faces", photo), words, "not an image file")


@pytest.mark.parametrize("kind", KINDS)
def test_compare_names_what_a_photo_is(kind, tmp_path, capsys):
    make, words = KINDS[kind]
    photo = make(tmp_path / "photo.jpg")
    assert_refused(run(capsys, "faces", "--compare", photo, shared_file(FACE)), words)


@pytest.mark.parametrize("kind", KINDS)
def test_the_loader_refuses_before_reading(kind, tmp_path):
    make, words = KINDS[kind]
    photo = make(tmp_path / "photo.jpg")
    for load in (load_image, read_image_file):
        with pytest.raises(ImageLoadError, match=words):
            load(photo)


def test_a_file_larger_than_the_byte_bound_is_refused_unread(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as file:
        file.truncate(5_000_000)  # sparse: no byte written, 5 MB long
    config = ImageLoadConfig(max_pixels=1_000_000)  # bound: 4 MB
    with pytest.raises(ImageLoadError, match="5 MB, over the 4 MB limit"):
        load_image(path, config)


def test_the_usual_errors_are_kept(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").touch()
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(tmp_path / "empty.jpg")
