"""Output folder policy (issue 13) as every folder-writing command uses it (``fprt.outdir.OutputFolder``):
the lock names the running writer's PID, a failed run leaves the previous folder untouched and no staging
folder behind, a swap killed between its two renames is recovered by the next run, ``train`` writes in place
(a killed training stays resumable), ``bench`` and ``make-demo-data`` refuse a non-empty folder without
``--overwrite``. On main (fe3ab48) there was no such module (ImportError) and ``bench`` overwrote silently."""

from __future__ import annotations

import os

import pytest

from fprt.errors import FprtError
from fprt.outdir import OutputFolder


def test_output_policy_lock_names_the_writer(tmp_path):
    with OutputFolder(tmp_path / "out") as first:
        with pytest.raises(FprtError, match=f"being written by another fprt run \\(PID {os.getpid()}"):
            OutputFolder(tmp_path / "out").__enter__()
        (first.path / "a.txt").write_text("1")
        first.commit()
    assert (tmp_path / "out" / "a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # lock and staging gone


def test_output_policy_failed_run_leaves_the_previous_one(tmp_path):
    with OutputFolder(tmp_path / "out") as f:
        (f.path / "old.txt").write_text("old")
        f.commit()
    with pytest.raises(RuntimeError):
        with OutputFolder(tmp_path / "out", overwrite=True) as f:
            (f.path / "new.txt").write_text("new")
            raise RuntimeError("the run failed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_policy_swap_killed_between_renames_is_recovered(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    os.rename(tmp_path / "out", tmp_path / ".out.old-99999999")  # a two-rename swap killed half-way
    (tmp_path / ".out.staging-99999999").mkdir()
    with OutputFolder(tmp_path / "other"):  # another folder: leaves these alone
        pass
    assert (tmp_path / ".out.old-99999999").exists()
    with pytest.raises(FprtError, match="not empty"):  # the recovered previous run is there again
        OutputFolder(tmp_path / "out").__enter__()
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_policy_in_place_keeps_a_failed_runs_files(tmp_path):
    with pytest.raises(RuntimeError):
        with OutputFolder(tmp_path / "run", in_place=True, command="train") as f:
            assert f.path == f.out
            (f.path / "state.json").write_text("{}")
            raise RuntimeError("killed mid-training")
    assert (tmp_path / "run" / "state.json").exists()  # what --resume continues from
    with pytest.raises(FprtError, match="pass --resume"):
        OutputFolder(tmp_path / "run", in_place=True, hint="pass --resume to continue").__enter__()


def test_output_policy_bench_report_refuses_a_non_empty_folder(tmp_path):
    from fprt.runtime.bench import BenchReport

    report = BenchReport.__new__(BenchReport)
    report.to_dict = lambda: {"rows": []}
    report.to_markdown = lambda: "| x |\n"
    out = tmp_path / "bench"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FprtError, match="not empty; pass --overwrite"):
        report.write(out)
    written = report.write(out, overwrite=True)
    assert written["json"] == out / "bench.json" and sorted(p.name for p in out.iterdir()) == ["bench.json", "bench.md"]
