"""Output safety (no overwrite by accident, nothing half-written), option errors, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fprt.demo import DemoOptionError, make_demo_data, writer
from fprt.errors import FprtError

TINY = {"classes": 2, "n_real": 1, "n_generated": 1, "n_test": 1}


def test_refuses_non_empty_out_unless_overwrite(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FprtError, match="not empty.*--overwrite"):
        make_demo_data(out, "subsets", workers=1, progress=False, **TINY)
    assert (out / "keep.txt").read_text() == "mine"
    info = make_demo_data(out, "subsets", workers=1, progress=False, overwrite=True, **TINY)
    assert not (out / "keep.txt").exists() and (info.out / "demo.json").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    make_demo_data(empty, "subsets", workers=1, progress=False, **TINY)  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(FprtError, match="not a folder"):
        make_demo_data(tmp_path / "file", "subsets", workers=1, progress=False, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "out"]  # no temporary folder left


def test_a_failing_run_leaves_nothing(tmp_path: Path, monkeypatch):
    calls = {"n": 0}
    real_work = writer._work

    def failing(job):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way
        return real_work(job)

    monkeypatch.setattr(writer, "_work", failing)
    with pytest.raises(KeyboardInterrupt):
        make_demo_data(tmp_path / "out", "subsets", workers=1, progress=False, **TINY)
    assert calls["n"] == 3
    assert list(tmp_path.iterdir()) == []  # neither OUT nor the hidden .partial folder


def test_leftover_of_a_killed_run_is_cleaned(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has exited: its pid is (almost surely) not reused yet
    stale = tmp_path / f".out.staging-{pid}"  # fprt.outdir's staging folder of a killed run
    (stale / "train").mkdir(parents=True)
    other = tmp_path / f".other.staging-{pid}"  # another folder's: not ours to touch
    other.mkdir()
    make_demo_data(tmp_path / "out", "subsets", workers=1, progress=False, **TINY)
    assert not stale.exists() and other.exists() and (tmp_path / "out" / "demo.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.staging-" + str(pid), "out"]  # no lock left


@pytest.mark.parametrize(
    ("task", "kwargs", "match"),
    [
        ("subsets", {"n_used": 3}, "--n-used apply to --task membership only"),
        ("membership", {"classes": 3}, "--classes apply to --task subsets only"),
        ("membership", {"copy_fraction": 1.5}, "--copy-fraction must be in \\[0, 1\\]"),
        ("subsets", {"classes": 1}, "--classes must be an integer >= 2"),
        ("subsets", {"n_real": -1}, "--n-real must be an integer >= 0"),
        ("subsets", {"generated_naming": "gen"}, "--generated-naming must be 'gen_t' or 't'"),
        ("subsets", {"size": 8}, "--size must be in"),
        ("segmentation", {}, "task must be one of subsets, membership"),
    ],
)
def test_option_errors_name_the_option(tmp_path: Path, task, kwargs, match):
    with pytest.raises(DemoOptionError, match=match):
        make_demo_data(tmp_path / "out", task, progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_cli_writes_and_reports(tmp_path: Path):
    fprt = [sys.executable, "-m", "fprt"]
    out = tmp_path / "m"
    r = subprocess.run(fprt + ["make-demo-data", str(out), "--task", "membership", "--n-used", "2", "--n-not-used", "2",
                               "--n-generated", "3", "--seed", "4"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "wrote 14 images (membership, seed 4)" in r.stdout and "labels.csv" in r.stdout
    assert (out / "test" / "labels.csv").read_text().count("\n") == 4
    r = subprocess.run(fprt + ["make-demo-data", str(out), "--task", "membership"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("fprt: error: output folder") and "--overwrite" in r.stderr
