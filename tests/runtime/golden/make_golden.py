"""Regenerate the golden outputs of tests/runtime/test_score_golden.py.

Run ONCE on the code the goldens pin (these were written by main at fe3ab48, before the one-read
pipeline of issue 15):  .venv/bin/python tests/runtime/golden/make_golden.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CASES = [("subsets", "centroid"), ("subsets", "knn"), ("membership", "max-sigma"), ("membership", "vcmi-max")]


def build(root: Path, task: str):
    from runtime_testkit import make_membership_data, make_onnx, make_subsets_data

    if task == "subsets":
        return make_subsets_data(root / "data", n_test=7), make_onnx(root / "m.onnx", task="subsets", metric="l2")[0]
    return make_membership_data(root / "data"), make_onnx(root / "m.onnx", task="membership", metric="cosine")[0]


def main() -> None:
    import os

    from fprt.runtime import score

    tmp = Path(tempfile.mkdtemp())
    os.environ["FPRT_CACHE_DIR"] = str(tmp / "cache")
    for task, method in CASES:
        data, model = build(tmp / task, task)
        out = tmp / f"out-{task}-{method}"
        score(model, data, out, method=method, plots=False, progress=False)
        for name in ("run.csv", "scores.csv"):
            shutil.copy(out / name, HERE / f"{task}-{method}-{name}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
