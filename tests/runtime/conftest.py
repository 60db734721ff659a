"""Fixtures of the runtime tests. Model/data builders live in runtime_testkit.py."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
