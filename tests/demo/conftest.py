"""Demo datasets built once per test session (small, seeded) for the tests in tests/demo/."""

from __future__ import annotations

import pytest
from demo_testkit import MEMBERSHIP_SMALL, SUBSETS_SMALL


@pytest.fixture(scope="session")
def subsets_root(tmp_path_factory):
    from fprt.demo import make_demo_data

    out = tmp_path_factory.mktemp("demo") / "subsets"
    info = make_demo_data(out, "subsets", seed=11, workers=2, progress=False, **SUBSETS_SMALL)
    return info.out


@pytest.fixture(scope="session")
def membership_root(tmp_path_factory):
    from fprt.demo import make_demo_data

    out = tmp_path_factory.mktemp("demo") / "membership"
    info = make_demo_data(out, "membership", seed=12, workers=2, progress=False, **MEMBERSHIP_SMALL)
    return info.out
