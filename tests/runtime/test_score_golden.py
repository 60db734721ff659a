"""The one-read pipeline (issue 15) changes how files are read, not what comes out: run.csv and
scores.csv of both tasks, byte for byte, against golden files written by main (fe3ab48) before the
change (tests/runtime/golden/make_golden.py), for pinned methods; fresh cache, warm cache and --no-cache.

Other changes may flip the sign of the ``score`` column (issue 14's one sign convention), so scores.csv is
compared column by column on the columns both files have: ids, files, decisions and neighbours exactly,
numeric cells up to their sign."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest

from fprt.runtime import score

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))

from make_golden import CASES, build  # noqa: E402


def _table(text: str) -> dict[str, list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    return {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}


def _same_scores(got: str, want: str) -> None:
    g, w = _table(got), _table(want)
    for name in set(g) & set(w):
        if name in ("image_id", "file", "decision", "neighbours"):
            assert g[name] == w[name], name
        else:
            assert [c.lstrip("-") for c in g[name]] == [c.lstrip("-") for c in w[name]], name
    assert {"image_id", "file", "decision", "score"} <= set(g)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    return {task: build(root / task, task) for task in ("subsets", "membership")}


@pytest.mark.parametrize("task,method", CASES)
def test_outputs_byte_identical_to_main(cases, task, method, tmp_path):
    data, model = cases[task]
    cache = tmp_path / "cache"
    for run, kw in (("cold", {"cache": cache}), ("warm", {"cache": cache}), ("nocache", {"use_cache": False})):
        r = score(model, data, tmp_path / run, method=method, plots=False, progress=False, batch_size=5, workers=2, **kw)
        assert r.run_csv.read_bytes() == (GOLDEN / f"{task}-{method}-run.csv").read_bytes(), run
        _same_scores(r.scores_csv.read_text(), (GOLDEN / f"{task}-{method}-scores.csv").read_text())
        if run == "warm":
            assert r.summary["counts"]["computed"] == 0 and r.summary["timings"].get("decode") is None
