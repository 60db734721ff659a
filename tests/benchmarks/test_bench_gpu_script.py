"""``benchmarks/gpu.sh``'s CPU-only parts (what CI can run): the dry run checks arguments, tools and imports;
bad arguments fail before anything runs; ``gpu_tools.py report`` turns a results folder into GPU.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="gpu.sh needs bash")


def _run(*args, timeout=300):
    env = {**os.environ, "FPRT_NO_PROGRESS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args, "--python", sys.executable], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def test_dry_run_checks_imports_and_prints_the_plan(tmp_path):
    proc = _run("--dry-run", "--out", str(tmp_path / "results"), "--batch-sizes", "1,8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "dry run: arguments, tools and imports are fine" in out
    for step in ("build:", "similarity:", "latency:", "fprt bench:", "report:"):
        assert step in out
    assert "--batch-sizes 1,8" in out and "bench_similarity.py" in out and "TORCH=" in out
    assert not (tmp_path / "results").exists()  # nothing was run or written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "1,0"], "--batch-sizes '1,0'"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--model", "/no/such/run"], "--model '/no/such/run'"),
        (["--out"], "--out needs a folder"),
    ],
)
def test_bad_arguments_fail_before_anything_runs(args, message):
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0
    assert message in proc.stderr


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
    assert "_missing: no bench_latency.json" in md and "_missing: no fprt-bench-cuda/bench.md_" in md
    assert "gpu: test GPU" in md
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_tools.py"), "report"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr
