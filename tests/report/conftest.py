"""Scored runs of both tasks on small data the tests make (tests/runtime/runtime_testkit.py), once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
import runtime_testkit as K  # noqa: E402


@pytest.fixture(scope="session")
def membership_run(tmp_path_factory):
    """membership scored with phash (no model): 16 real test images, half used, 40 generated."""
    from fprt.runtime import score

    root = tmp_path_factory.mktemp("report-membership")
    data = K.make_membership_data(root / "data", size=32, n_real=16, n_gen=40)
    labels = data / "test" / "labels.csv"
    score(None, data, root / "out", method="phash", labels=labels, use_cache=False, progress=False)
    return root / "out", data, labels


@pytest.fixture(scope="session")
def subsets_runs(tmp_path_factory):
    """subsets scored with a tiny ONNX model twice: knn (neighbours are files) and centroid (neighbours are subsets)."""
    from fprt.runtime import score

    root = tmp_path_factory.mktemp("report-subsets")
    data = K.make_subsets_data(root / "data", k=3, n_real=8, n_gen=8, n_test=6)
    labels = data / "test" / "labels.csv"
    model, _, _ = K.make_onnx(root / "m.onnx", task="subsets", classes=("t1", "t2", "t3"))
    for method in ("knn", "centroid"):
        score(model, data, root / method, method=method, labels=labels, use_cache=False, progress=False)
    return {"knn": root / "knn", "centroid": root / "centroid", "data": data, "labels": labels}
