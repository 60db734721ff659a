"""Model latency per backend and precision at batch 1, 8, 64, 256: the suite form of ``fprt bench``.

    pytest benchmarks/bench_latency.py --benchmark-only -s

Each batch size is one ``fprt.runtime.bench.run_bench`` run on the suite's Siamese CNN (``demo_model``,
256×256; untrained unless ``FPRT_BENCH_RUN`` names a trained run) with the demo dataset for images and
INT8 calibration: PyTorch eager, ONNX Runtime fp32 and INT8 (QDQ) on the CPU, interleaved round-robin so
that all see the same background load; on a GPU (skipped without one) PyTorch fp32/fp16, ONNX Runtime's
CUDA EP and TensorRT fp32/fp16. ``extra_info`` keeps every row of the table and the ratios
(ONNX Runtime / PyTorch, INT8 / fp32, TensorRT / PyTorch); ``benchmarks/results/bench_latency.json`` keeps them.
``FPRT_BENCH_THREADS`` sets the CPU threads (default: physical cores); ``FPRT_BENCH_SECONDS`` the time per batch size.
"""

from __future__ import annotations

import os

import pytest

BATCHES = (1, 8, 64, 256)
THREADS = int(os.environ["FPRT_BENCH_THREADS"]) if os.environ.get("FPRT_BENCH_THREADS") else None
SECONDS = float(os.environ.get("FPRT_BENCH_SECONDS", "8"))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _run(benchmark, demo_model, demo_subsets, batch: int, device: str):
    from fprt.runtime.bench import run_bench

    def once():
        return run_bench(demo_model, data=demo_subsets, batch_sizes=[batch], device=device, threads=THREADS, seconds=SECONDS,
                         accuracy=False, command=f"pytest benchmarks/bench_latency.py (batch {batch}, {device})")

    report = benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(
        device=device,
        batch=batch,
        threads=report.threads,
        load_average=[report.machine.get("load_before"), report.machine.get("load_after")],
        rows=[r.to_dict() for r in report.rows if r.status == "ok"],
        not_run={v.key: f"{v.status}: {v.reason}" for v in report.variants if v.status != "ok"},
        ratios={name: values.get(batch) for name, values in report.headline_ratios().items()},
    )
    print()
    report.print()
    return report


@pytest.mark.benchmark(group="latency-cpu")
@pytest.mark.parametrize("batch", BATCHES)
def test_latency_cpu(benchmark, demo_model, demo_subsets, batch):
    report = _run(benchmark, demo_model, demo_subsets, batch, "cpu")
    ok = {r.key for r in report.rows if r.status == "ok"}
    assert {"torch-fp32", "onnx-fp32"} <= ok, report.to_markdown()


@pytest.mark.skipif(not _cuda(), reason="no CUDA GPU visible to torch")
@pytest.mark.benchmark(group="latency-gpu")
@pytest.mark.parametrize("batch", BATCHES)
def test_latency_gpu(benchmark, demo_model, demo_subsets, batch):
    report = _run(benchmark, demo_model, demo_subsets, batch, "cuda")
    assert any(r.status == "ok" for r in report.rows), report.to_markdown()
