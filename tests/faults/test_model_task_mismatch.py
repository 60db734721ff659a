"""Model fault (issue 14): a model trained for the other task is an error unless ``allow_task_mismatch`` /
``--allow-task-mismatch`` — on main (fe3ab48) it scored with one unprefixed warning and exit 0."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fprt.errors import FprtError
from fprt.runtime import score
sys.path.insert(0, str(Path(__file__).resolve().parent))  # works with or without tests/faults/__init__.py
from pipeline_testkit import make_membership_data, make_onnx  # noqa: E402


def test_model_for_the_other_task_refused_unless_allowed(tmp_path):
    data = make_membership_data(tmp_path / "data", n_real=8, n_gen=12)
    model, _, _ = make_onnx(tmp_path / "subsets.onnx", task="subsets", metric="cosine")
    cache = tmp_path / "cache"
    with pytest.raises(FprtError, match="trained for subsets but .* is a membership test split; pass --allow-task-mismatch"):
        score(model, data, tmp_path / "out", cache=cache, progress=False)
    assert not (tmp_path / "out").exists() and not list(cache.rglob("*.shard"))
    r = score(model, data, tmp_path / "out", cache=cache, allow_task_mismatch=True, progress=False)
    assert r.n_test == 8 and r.run_csv.exists()
