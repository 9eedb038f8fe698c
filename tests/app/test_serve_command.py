"""`facestudio serve` refuses unsafe or impossible settings in one line, before any import
of the server's libraries or the model."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facestudio.app.config import ServeConfig, is_loopback
from facestudio.errors import FaceStudioError
from facestudio.interfaces.cli import main


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("myhost", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_a_network_address_needs_a_token_of_enough_length():
    with pytest.raises(FaceStudioError, match="FACESTUDIO_TOKEN"):
        ServeConfig(host="0.0.0.0").check()
    with pytest.raises(FaceStudioError, match="at least 16"):
        ServeConfig(host="0.0.0.0", token="short").check()
    ServeConfig(host="0.0.0.0", token="x" * 32).check()
    ServeConfig().check()  # loopback needs none


def test_the_command_refuses_in_one_line_without_loading_anything(monkeypatch, capsys):
    monkeypatch.delenv("FACESTUDIO_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "needs a token" in error[0]
    assert main(["serve", "--queue-size", "0"]) == 2
    assert "queue size" in capsys.readouterr().err


def test_the_refusal_comes_before_torch_gradio_or_the_model_are_loaded():
    code = (
        "import sys\n"
        "from facestudio.interfaces.cli import main\n"
        "code = main(['serve', '--host', '0.0.0.0'])\n"
        "heavy = sorted({'torch', 'gradio', 'fastapi', 'uvicorn', 'diffusers'} & set(sys.modules))\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={}, check=False
    )
    assert done.stdout.strip() == "2 []" and "needs a token" in done.stderr
