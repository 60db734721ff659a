"""Shared by the pipeline helper's fault tests (output folder, cache, labels, bad files): small data and
models from tests/runtime/runtime_testkit.py, and a way to run ``fprt score`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from runtime_testkit import make_membership_data, make_onnx, make_subsets_data  # noqa: E402,F401


def membership_case(root: Path, **kw):
    data = make_membership_data(root / "data", **kw)
    model, _, _ = make_onnx(root / "m.onnx", task="membership", metric="cosine")
    return data, model


def score_in_subprocess(data, model, out, *args, env=None, wait=True, cwd=None):
    """``fprt.runtime.score`` in a fresh Python (so it can be killed); extra ``args`` are ``key=value`` kwargs."""
    kwargs = dict(a.split("=", 1) for a in args)
    code = (
        "import json, sys\n"
        "from fprt.runtime import score\n"
        f"kw = json.loads({json.dumps(json.dumps(kwargs))})\n"
        "kw = {k: (v == 'True') if v in ('True', 'False') else v for k, v in kw.items()}\n"
        f"score({str(model)!r}, {str(data)!r}, {str(out)!r}, progress=False, **kw)\n"
    )
    cmd = [sys.executable, "-c", code]
    full_env = {**os.environ, **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, env=full_env, cwd=cwd or Path(out).parent, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=full_env, cwd=cwd or Path(out).parent, capture_output=True, text=True, timeout=300)


def complete_run(out: Path) -> dict:
    """The summary of the one run ``out`` holds; AssertionError unless its files are exactly that run's."""
    summary = json.loads((out / "summary.json").read_text())
    expected = set(summary["outputs"]) | {"summary.json"} | ({"bad_files.csv"} if summary.get("on_error") == "skip" else set())
    assert {p.name for p in out.iterdir()} == expected, (sorted(p.name for p in out.iterdir()), sorted(expected))
    ids = [line.split(",")[0] for line in (out / "run.csv").read_text().splitlines()]
    assert len(ids) == summary["counts"]["test_images"]
    scores = (out / "scores.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in scores[1:]] == ids
    return summary
