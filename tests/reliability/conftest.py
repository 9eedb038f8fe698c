"""Every reliability test gets its own face cache: damage done to one cannot leak into another."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_CACHE", str(tmp_path / "cache"))
