"""Output folder faults (issue 13): ``--out`` holds exactly one run's complete files, or the previous run
untouched — across kills at every point of the output phase, two concurrent runs, re-scoring without
labels, and the refusals (non-empty without --overwrite, inside the data, a file, under a file, read-only).

Each test failed on main (fe3ab48): main wrote the files one by one straight into ``--out``, overwrote a
non-empty ``--out`` silently, kept the old metrics.json/plots, had no lock, and crashed with a traceback
(FileExistsError / NotADirectoryError / PermissionError) on an unusable ``--out``."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from fprt.errors import FprtError
from fprt.runtime import score
sys.path.insert(0, str(Path(__file__).resolve().parent))  # works with or without tests/faults/__init__.py
from pipeline_testkit import complete_run, membership_case, score_in_subprocess  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return membership_case(tmp_path_factory.mktemp("out-faults"), n_real=8, n_gen=12)


@pytest.mark.slow
def test_output_kill_at_every_point_of_the_output_phase_leaves_one_complete_run(case, tmp_path):
    data, model = case
    out = tmp_path / "out"
    labels = data / "test" / "labels.csv"
    first = score(model, data, out, labels=labels, progress=False)  # run A: with labels → metrics + 4 plots
    names_a = {p.name for p in out.iterdir()}
    run_a = (out / "run.csv").read_bytes()
    assert {"metrics.json", "roc.png"} <= names_a
    # run B (no labels: 3 files) killed at each checkpoint: after run.csv, scores.csv, summary.json, before
    # the swap, just after the swap (old run not yet removed)
    kills = 0
    for point in range(1, 6):
        p = score_in_subprocess(data, model, out, "overwrite=True", "method=vcmi-max",
                                env={"FPRT_TEST_OUTPUT_HOOK": f"kill:{point}"})
        if p.returncode == 0:
            break  # fewer checkpoints than that: the run finished
        assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
        kills += 1
        summary = complete_run(out)
        assert summary["method"]["name"] in (first.method, "vcmi-max")
        if summary["method"]["name"] == first.method:
            assert (out / "run.csv").read_bytes() == run_a and {p.name for p in out.iterdir()} == names_a
    assert kills >= 4
    # the next run cleans the killed runs' leftovers (staging folders, stale lock) and completes
    r = score(model, data, out, method="vcmi-max", overwrite=True, progress=False)
    assert complete_run(out)["method"]["name"] == "vcmi-max" and r.metrics is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_two_concurrent_runs_into_one_folder(case, tmp_path):
    data, model = case
    out = tmp_path / "out"
    marker = tmp_path / "held"
    first = score_in_subprocess(data, model, out, "method=max-sigma", env={"FPRT_TEST_OUTPUT_HOOK": f"hold:1:{marker}"},
                                wait=False)
    try:
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.02)
        assert marker.exists(), first.communicate()[1][-2000:]
        with pytest.raises(FprtError, match=f"being written by another fprt run \\(PID {first.pid}"):
            score(model, data, out, method="vcmi-max", overwrite=True, progress=False)
    finally:
        marker.unlink(missing_ok=True)  # let the first run go on
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr[-2000:]
    assert complete_run(out)["method"]["name"] == "max-sigma"  # the first run's files, all of them


def test_output_rescore_without_labels_keeps_no_old_metrics_or_plots(case, tmp_path):
    data, model = case
    out = tmp_path / "out"
    score(model, data, out, labels=data / "test" / "labels.csv", progress=False)
    assert (out / "metrics.json").exists() and (out / "roc.png").exists()
    score(model, data, out, overwrite=True, progress=False)
    assert complete_run(out)["metrics"] is None
    assert not (out / "metrics.json").exists() and not (out / "roc.png").exists()


def test_output_existing_non_empty_folder_refused_unless_overwrite(case, tmp_path):
    data, model = case
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FprtError, match="not empty; pass --overwrite"):
        score(model, data, out, progress=False)
    assert (out / "notes.txt").read_text() == "mine"
    score(model, data, out, overwrite=True, progress=False)
    assert not (out / "notes.txt").exists()
    complete_run(out)


def test_output_inside_the_data_refused(case, tmp_path):
    data, model = case
    with pytest.raises(FprtError, match="lies inside the data"):
        score(model, data, data / "test" / "scores-out", progress=False)
    assert not (data / "test" / "scores-out").exists()


@pytest.mark.parametrize("where", ["file", "under_file", "read_only"])
def test_output_path_unusable_is_a_clear_error_before_work(case, tmp_path, where):
    data, model = case
    (tmp_path / "a_file").write_text("x")
    out = {"file": tmp_path / "a_file", "under_file": tmp_path / "a_file" / "out",
           "read_only": Path("/sys/fprt-test-out")}[where]  # /sys refuses mkdir even to root
    cache = tmp_path / "cache"
    with pytest.raises(FprtError, match={"file": "is a file", "under_file": "which is a file",
                                         "read_only": "cannot"}[where]):
        score(model, data, out, cache=cache, progress=False)
    assert not list(cache.rglob("*.shard"))  # refused before any model work
