"""``benchmarks/gpu.sh``'s CPU-only parts (what CI can run): the dry run checks arguments, tools and imports
and prints the plan and the budget schedule; bad arguments fail before anything runs; the time-budget logic
(``gpu_tools.step_limit`` / ``schedule``, which gpu.sh asks before every step); ``gpu_tools.py report`` turns a
results folder into GPU.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_tools  # noqa: E402
SCRIPT = ROOT / "benchmarks" / "gpu.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="gpu.sh needs bash")


def _run(*args, timeout=300):
    env = {**os.environ, "FPRT_NO_PROGRESS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args, "--python", sys.executable], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def test_dry_run_checks_imports_and_prints_the_plan(tmp_path):
    proc = _run("--dry-run", "--out", str(tmp_path / "results"), "--budget", "300")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "dry run: arguments, tools and imports are fine" in out
    for step in ("build:", "gpu-tests:", "demo:", "tensorrt:", "similarity:", "score:", "report:"):
        assert step in out
    assert "pytest -m gpu" in out and "bench_similarity.py" in out and "trt-parity" in out and "TORCH=" in out
    assert "budget 300 s" in out
    # the schedule for 300 s: the first four steps fit, the last two are skipped
    assert "tensorrt: run, limit" in out and "similarity: skip: time budget" in out and "score: skip: time budget" in out
    assert not (tmp_path / "results").exists()  # nothing was run or written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0"], "--budget '0'"),
        (["--budget", "8m"], "--budget '8m'"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--out"], "--out needs a folder"),
    ],
)
def test_bad_arguments_fail_before_anything_runs(args, message):
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_time_budget_limits_each_step_and_skips_what_cannot_fit():
    # a step gets at most twice its estimate ...
    ok, limit, _ = gpu_tools.step_limit("similarity", 0, 480)
    assert ok and limit == 2 * 90
    # ... never past the budget minus the report's reserve ...
    ok, limit, _ = gpu_tools.step_limit("similarity", 400, 480)
    assert ok and limit == 480 - 400 - gpu_tools.REPORT_RESERVE
    # ... and is skipped when that is below its minimum
    ok, limit, why = gpu_tools.step_limit("similarity", 430, 480)
    assert not ok and limit == 0 and "35 s left of 480 s" in why and "at least 40 s" in why
    with pytest.raises(ValueError, match="unknown step"):
        gpu_tools.step_limit("latency", 0, 480)
    # the default budget fits every step at its estimate (8 minutes on one H100/H200)
    sched = gpu_tools.schedule(gpu_tools.DEFAULT_BUDGET)
    assert [name for name, _ in sched] == [s[0] for s in gpu_tools.STEPS]
    assert all(what.startswith("run") for _, what in sched)
    assert sum(est for _, est, _, _ in gpu_tools.STEPS) + gpu_tools.REPORT_RESERVE <= gpu_tools.DEFAULT_BUDGET
    # worst case: every step runs to its limit and the run still ends within the budget
    elapsed = 0
    for name, _, _, _ in gpu_tools.STEPS:
        ok, limit, _ = gpu_tools.step_limit(name, elapsed, gpu_tools.DEFAULT_BUDGET)
        elapsed += limit if ok else 0
    assert elapsed + gpu_tools.REPORT_RESERVE <= gpu_tools.DEFAULT_BUDGET
    # the CLI form gpu.sh uses
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_tools.py"), "step-limit", "score", "470", "480"],
                         capture_output=True, text=True)
    assert run.stdout.startswith("skip time budget")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_tools.py"), "step-limit", "build", "0", "480"],
                         capture_output=True, text=True)
    assert run.stdout.strip() == "run 120"


FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for the interpreter gpu.sh runs: a "GPU" in the check, instant build / tests / demo / score, and
# a TensorRT step and a similarity benchmark that hang until gpu.sh's timeout stops them.
REAL="{real}"
if [[ "$1" == *gpu_tools.py ]]; then
    case "$2" in
        check) echo "CUDA_HOME=/fake/cuda"; echo "ARCHS=8.0;9.0+PTX"; echo "GPU=Fake GPU"; echo "CAPABILITY=9.0"; exit 0 ;;
        build-ext|demo|score) echo "fake $2"; exit 0 ;;
        trt-parity) exec sleep 100 ;;
    esac
    exec "$REAL" "$@"
fi
if [[ "$1 $2" == "-m pytest" ]]; then
    if [[ "$*" == *bench_similarity* ]]; then exec sleep 100; fi
    echo "fake pytest -m gpu"; exit 0
fi
exec "$REAL" "$@"
"""


def test_real_run_stops_cleanly_at_the_time_budget(tmp_path):
    """gpu.sh's real path with stand-in commands and estimates shrunk 20x (FPRT_GPU_TIME_SCALE): hanging steps
    are stopped at their limits, a step that no longer fits is skipped, and the run still ends with GPU.md
    within the budget."""
    import time

    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.format(real=sys.executable))
    fake.chmod(0o755)
    out = tmp_path / "results"
    env = {**os.environ, "FPRT_NO_PROGRESS": "1", "FPRT_GPU_TIME_SCALE": "0.05"}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT), "--out", str(out), "--budget", "12", "--python", str(fake)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    wall = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a step timed out
    steps = {row.split("\t")[0]: row.split("\t")[1:] for row in (out / "steps.tsv").read_text().splitlines()}
    assert [steps[s][0] for s in ("build", "gpu-tests", "demo")] == ["ok", "ok", "ok"]
    assert steps["tensorrt"][0] == "timed out" and steps["tensorrt"][2] in ("stopped at its 7 s limit", "stopped at its 6 s limit")
    assert steps["similarity"][0] == "timed out"
    assert steps["score"][0] == "skipped" and steps["score"][2].startswith("time budget:")
    assert sum(int(v[1]) for v in steps.values()) <= 12  # the steps kept to the budget
    assert wall < 60  # budget + the import check and the report, with room for a loaded machine
    md = (out / "GPU.md").read_text()
    assert "| tensorrt | timed out |" in md and "| score | skipped | 0 | time budget:" in md and "budget: 12 s" in md


def test_report_lists_what_is_there_and_what_is_missing(tmp_path):
    """GPU.md from a results folder: the similarity ratios with the issue's goals, and missing parts named as missing."""
    (tmp_path / "run.txt").write_text("date: 2026-01-01\ngpu: test GPU\n")
    doc = {"benchmarks": [
        {"name": "test_cublas_bf16_gemm", "stats": {"min": 0.010}, "extra_info": {}},
        {"name": "test_fprt_cuda_bf16_top10", "stats": {"min": 0.012}, "extra_info": {}},
        {"name": "test_summary", "stats": {"min": 0.0}, "extra_info": {"fprt_cuda_bf16_top10/cublas_bf16_gemm": 1.2,
                                                                          "fprt_cuda_bf16_top10/torch_cuda_bf16_top10": 0.5}},
    ]}
    (tmp_path / "bench_similarity.json").write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_tools.py"), "report", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "GPU.md").read_text()
    assert "| fprt_cuda_bf16_top10/cublas_bf16_gemm | 1.200 | ≤ 1.5 (met) |" in md
    assert "| fprt_cuda_bf16_top10/torch_cuda_bf16_top10 | 0.500 | ≤ 0.33 (NOT met) |" in md
    assert "| cublas_bf16_gemm | 0.0100 |" in md
    assert "_missing: no trt.json" in md and "_missing: no gpu-tests.xml_" in md and "score-onnx-cuda: _missing_" in md
    assert "gpu: test GPU" in md
    # steps, test results, parity and the end-to-end run when they are there
    (tmp_path / "steps.tsv").write_text("build\tok\t12\t\nscore\tskipped\t0\ttime budget: 5 s left\n")
    (tmp_path / "gpu-tests.xml").write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase classname="t" name="a"/><testcase classname="t" name="b"><failure message="boom"/></testcase>'
        '<testcase classname="t" name="c"><skipped/></testcase></testsuite></testsuites>')
    (tmp_path / "trt.json").write_text(json.dumps({
        "fp32": {"build_s": 20.0, "max_abs": 1e-6, "max_rel": 2e-6, "min_row_cosine": 0.9999999, "goal": "row cosine >= 0.99999",
                 "ok": True, "graph_equal": True},
        "fp16": {"error": "RuntimeError: no fp16 kernels"}}))
    (tmp_path / "score-onnx-cuda").mkdir()
    (tmp_path / "score-onnx-cuda" / "summary.json").write_text(json.dumps({"backend": {"name": "onnx"}, "counts": {"n": 100},
                                                                           "timings": {"infer": 1.5}}))
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_tools.py"), "report", str(tmp_path)], check=True,
                   capture_output=True, text=True, timeout=120)
    md = (tmp_path / "GPU.md").read_text()
    assert "| build | ok | 12 |  |" in md and "| score | skipped | 0 | time budget: 5 s left |" in md
    assert "3 tests: 1 passed, 1 failed, 0 errors, 1 skipped" in md and "FAILURE t::b: boom" in md
    assert "| fp32 | 20.0 | 1.00e-06 | 2.00e-06 | 1.000000 | row cosine >= 0.99999 (met) | True |" in md
    assert "| fp16 | failed: RuntimeError: no fp16 kernels" in md
    assert '- score-onnx-cuda: backend {"name": "onnx"}' in md and "score-trt-cuda: _missing_" in md
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_tools.py"), "report"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr
