"""Session-wide test setup shared by every area. Area fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os

import pytest

# Deterministic, quiet runs: no progress bars in test logs, no user cache touched.
os.environ.setdefault("FPRT_NO_PROGRESS", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own fprt cache folder, so no test reads what another (or the user) left."""
    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path_factory.mktemp("fprt-cache")))
