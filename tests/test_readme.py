"""The README's Python snippets run as written (on real photos named as they name them), so
they cannot rot."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import shared_file

README = Path(__file__).resolve().parents[1] / "README.md"
PHOTOS = {  # the file names the snippets use → real photos
    "me1.jpg": "data/deepface/id04/img16.jpg",
    "me2.jpg": "data/deepface/id04/img17.jpg",
    "friend.jpg": "data/deepface/id05/img13.jpg",
    "a.jpg": "data/deepface/id04/img59.jpg",
    "b.jpg": "data/deepface/id05/img14.jpg",
    "group.jpg": "data/groups/couple.jpg",
    "painting.jpg": "data/groups/two_people.jpg",
}


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_the_face_and_the_generation_snippets():
    snippets = python_snippets()
    assert len(snippets) >= 2
    assert any('from_pretrained("bundled")' in s for s in snippets)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_each_python_snippet_runs(index, tmp_path, monkeypatch):
    for name, relative in PHOTOS.items():
        shutil.copy(shared_file(relative), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # "~/.cache/facestudio" lands here
    snippet = python_snippets()[index]
    exec(compile(snippet, f"README.md python snippet {index}", "exec"), {"__name__": "readme"})
    for written in ("us.png", "us-1.png"):
        if written in snippet:
            image = Image.open(tmp_path / written)
            assert "generated" in image.info["Description"].lower()
            assert "me1.jpg" in image.info["facestudio"]
