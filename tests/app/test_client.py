"""The Python client against a live server: a generation end to end, and the server's
one-line errors as `ClientError`s."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from facestudio.app.client import ClientError, FaceStudioClient


def test_the_client_generates_and_downloads_labelled_pngs(live_server, photo, tmp_path):
    path = tmp_path / "me.jpg"
    path.write_bytes(photo)
    client = FaceStudioClient(live_server)
    assert client.health()["status"] == "ok"
    pngs = client.generate([[path, path]], seed=3, num_images=2, num_inference_steps=2)
    seeds = [json.loads(Image.open(io.BytesIO(p)).info["facestudio"])["seed"] for p in pngs]
    assert seeds == [3, 4]


def test_the_client_raises_the_servers_one_line_errors(live_server, photo, tmp_path):
    path = tmp_path / "me.jpg"
    path.write_bytes(photo)
    client = FaceStudioClient(live_server)
    with pytest.raises(ClientError) as refused:
        client.submit([[path]], prompt="a cat")
    assert refused.value.status == 422 and "no text prior" in refused.value.detail
    with pytest.raises(ClientError) as missing:
        client.job("no-such-job")
    assert missing.value.status == 404
