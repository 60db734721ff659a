"""Labels faults (issue 13): a bad ``--labels`` file (missing ids, wrong values, not there) fails BEFORE any
model work, with the file named — on main (fe3ab48) it was read only after all the work, leaving run.csv
and scores.csv behind without summary.json."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fprt.errors import DataError
from fprt.runtime import score
sys.path.insert(0, str(Path(__file__).resolve().parent))  # works with or without tests/faults/__init__.py
from pipeline_testkit import membership_case  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return membership_case(tmp_path_factory.mktemp("labels-faults"), n_real=8, n_gen=12)


@pytest.mark.parametrize("content,why", [
    ("img_000,1\n", "no label for"),
    (None, "no label for|wrong_value"),
])
def test_labels_bad_file_fails_before_any_model_work(case, tmp_path, content, why):
    data, model = case
    labels = tmp_path / "labels.csv"
    if content is None:  # every id, but one value that is not 0/1
        lines = (data / "test" / "labels.csv").read_text().splitlines()
        lines[0] = lines[0].split(",")[0] + ",wrong_value"
        content = "\n".join(lines) + "\n"
    labels.write_text(content)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=why) as err:
        score(model, data, tmp_path / "out", labels=labels, cache=cache, progress=False)
    assert str(labels) in str(err.value)
    assert not list(cache.rglob("*.shard"))  # no image was embedded
    assert not (tmp_path / "out").exists()
