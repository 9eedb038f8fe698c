"""scripts/setup.sh installs only what is missing: `demo.sh` after `test.sh` (fewer extras)
reinstalls nothing; new extras or a changed pyproject.toml install again. The virtual
environment's python is a stand-in that records each pip call."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDER = '#!/usr/bin/env bash\necho "$*" >> "$(dirname "$0")/../../pip-calls"\n'


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(RECORDER)
    python.chmod(0o755)
    return tmp_path


def _setup(checkout: Path, *extras: str) -> list[str]:
    """The `pip install -e` calls one run of setup.sh made."""
    log = checkout / "pip-calls"
    log.unlink(missing_ok=True)
    subprocess.run(["bash", "scripts/setup.sh", *extras], cwd=checkout, check=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return [c for c in calls if " -e " in c]


def test_setup_installs_only_missing_extras(checkout):
    assert _setup(checkout, "[test]") == ["-m pip install --quiet -e .[test]"]
    assert _setup(checkout) == []  # demo.sh after test.sh
    assert _setup(checkout, "[test]") == []
    assert _setup(checkout, "[app]") == ["-m pip install --quiet -e .[app]"]
    assert _setup(checkout, "[test,app]") == []
    assert _setup(checkout, "[app, test]") == []
    (checkout / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert _setup(checkout) == ["-m pip install --quiet -e ."]
    assert _setup(checkout, "[test]") == ["-m pip install --quiet -e .[test]"]


def test_an_older_one_line_stamp_is_understood(checkout):
    digest = hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()
    (checkout / ".venv" / ".facestudio-installed").write_text(f"{digest}[test,train]\n")
    assert _setup(checkout) == []
    assert _setup(checkout, "[train]") == []
    assert _setup(checkout, "[app]") == ["-m pip install --quiet -e .[app]"]
