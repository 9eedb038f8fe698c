"""What travels through Redis and what is refused before anything starts: a queued request
comes back exactly as it went in, only uploads and plain values travel, and bad cluster
settings (a password on the command line, no Redis, a Redis serving another model) are
refused in one line, before a model loads."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from facestudio.app.job_codec import UnqueueableRequestError, decode_request, encode_request
from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main
from facestudio.pipeline.request import GenerationRequest, Upload
from tests.app.conftest import config, free_port
from tests.app.redis_cluster import redis_server, redis_server_path


def test_a_queued_request_comes_back_exactly_as_it_went_in(photo):
    files = {
        "person_0": [Upload("a.jpg", photo), Upload("b.jpg", photo[:100])],
        "person_1": [Upload("c.png", b"\x00\xff" * 10)],
        "style_image": [Upload("style.png", b"style")],
    }
    fields = {"seed": "7", "mix_weights": "0.7,0.3", "regions": "0,0,32,64;32,0,64,64"}
    request = GenerationRequest.from_mapping({**fields, "num_inference_steps": "3"}, files)
    assert decode_request(encode_request(request)) == request


def test_only_uploads_and_plain_values_can_be_queued():
    embedding = np.ones(128, np.float32)
    with pytest.raises(UnqueueableRequestError, match=r"people: .* not ndarray"):
        encode_request(GenerationRequest(people=[[embedding]]))
    blob = encode_request(GenerationRequest(people=[[Upload("a.jpg", b"abc")]]))
    for damaged in (blob[:-1], b"XXXX" + blob[4:], blob + b"!"):
        with pytest.raises(FaceStudioError, match="damaged"):
            decode_request(damaged)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--redis", "redis://:hunter2@db:6379/0"], "FACESTUDIO_REDIS_URL"),
        (["serve", "--redis", "http://db:6379"], "redis://, rediss:// or unix://"),
        (["worker"], "--redis redis://"),
        (["serve", "--redis"], "FACESTUDIO_REDIS_URL, which is not set"),
        (["worker", "--redis", "redis://db", "--visibility", "1"], "twice the heartbeat"),
        (["worker", "--redis", "redis://db", "--max-attempts", "0"], "--max-attempts"),
        (["worker", "--redis", "redis://db", "--name", "a b"], "--name"),
        (["worker", "--redis", "redis://db", "--device", "gpu"], "--device"),
    ],
)
def test_bad_cluster_settings_are_refused_in_one_line(monkeypatch, capsys, argv, says):
    monkeypatch.delenv("FACESTUDIO_REDIS_URL", raising=False)
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and says in error[0] and "hunter2" not in error[0]


def test_the_refusals_come_before_torch_or_the_model_are_loaded():
    code = (
        "import sys\n"
        "from facestudio.interfaces.cli import main\n"
        "codes = [main(['worker', '--redis', 'redis://db', '--visibility', '1']),\n"
        "         main(['serve', '--redis', 'redis://:pw@db'])]\n"
        "heavy = sorted({'torch', 'gradio', 'diffusers', 'redis'} & set(sys.modules))\n"
        "print(codes, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={}, check=False
    )
    assert done.stdout.strip() == "[2, 2] []", done.stderr


def test_an_unreachable_redis_is_one_line(capsys):
    redis_server_path()  # the client package is needed to try
    assert main(["worker", "--redis", f"redis://127.0.0.1:{free_port()}/0"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "cannot reach Redis" in error[0]


def test_a_redis_serving_another_model_is_refused(tmp_path):
    from facestudio.app.redis_store import connect
    from facestudio.app.server import create_app
    from facestudio.app.studio import Studio

    with redis_server(tmp_path) as url:
        store = connect(url)
        store.register_model("portraits-v2", 1e-6)
        with pytest.raises(FaceStudioError, match="serves model 'portraits-v2', not 'bundled'"):
            create_app(config(redis_url=url), Studio.described("bundled"), ui=False)
        store.client.close()


def test_redis_alone_reads_the_url_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("FACESTUDIO_REDIS_URL", "http://:hunter2@db:6379")
    assert main(["serve", "--redis"]) == 2  # the environment's URL is used, and checked
    error = capsys.readouterr().err
    assert "redis://, rediss:// or unix://" in error and "hunter2" not in error
