"""The three headline ratios of the README, measured together in one run (same machine, same hour, same load):

1. fprt similarity vs FAISS: ``fprt.runtime.similarity.topk`` vs ``faiss.knn`` (inner product on unit rows =
   cosine), 25,000 × 10,000 × 256, row top-10, interleaved round-robin;
2. ONNX Runtime vs PyTorch eager and 3. INT8 vs fp32: ``fprt bench`` on the suite's Siamese CNN (256×256;
   ``FPRT_BENCH_RUN`` = a trained run) at batch 64, all variants interleaved.

    FPRT_BENCH_RUN=runs/siamese pytest benchmarks/bench_headline.py --benchmark-only -s

The full comparisons live in bench_similarity.py (more peers, column top-k, memory) and bench_latency.py (all
batch sizes); this file only makes sure the three numbers quoted side by side were measured side by side.
``FPRT_BENCH_SMALL=1`` shrinks the similarity problem 10× for a quick check.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

SMALL = os.environ.get("FPRT_BENCH_SMALL") == "1"
M, N, D = (2500, 1000, 256) if SMALL else (25_000, 10_000, 256)
ROUNDS = int(os.environ.get("FPRT_BENCH_ROUNDS", "5"))
BATCH = int(os.environ.get("FPRT_BENCH_BATCH", "64"))


@pytest.mark.benchmark(group="headline")
def test_headline_ratios(benchmark, demo_model, demo_subsets, machine):
    import faiss
    import torch

    from fprt.export.bench import interleaved
    from fprt.runtime import similarity as sim
    from fprt.runtime.bench import load_average, run_bench

    rng = np.random.default_rng(0)
    q = rng.standard_normal((M, D), dtype=np.float32)
    r = rng.standard_normal((N, D), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    threads = torch.get_num_threads()
    faiss.omp_set_num_threads(threads)

    def measure():
        load_before = load_average()
        runners = {
            ("fprt-similarity", "fp32"): lambda: sim.topk(q, r, 10, "cosine"),
            ("faiss-knn", "fp32"): lambda: faiss.knn(q, r, 10, metric=faiss.METRIC_INNER_PRODUCT),
        }
        same = np.mean(runners[("fprt-similarity", "fp32")]()[1] == runners[("faiss-knn", "fp32")]()[1])
        sims = interleaved(runners, batch=M, threads=threads, rounds=ROUNDS)
        report = run_bench(demo_model, data=demo_subsets, batch_sizes=[BATCH], accuracy=False,
                           command="pytest benchmarks/bench_headline.py")
        return load_before, same, sims, report, load_average()

    load_before, same, sims, report, load_after = benchmark.pedantic(measure, rounds=1, iterations=1)
    fprt_s = sims[("fprt-similarity", "fp32")].p50_ms / 1e3
    faiss_s = sims[("faiss-knn", "fp32")].p50_ms / 1e3
    ratios = {
        "fprt_similarity_time_over_faiss": fprt_s / faiss_s,
        "onnx_fp32_over_torch_fp32_images_per_s": report.ratio("onnx-fp32", "torch-fp32", BATCH),
        "onnx_int8_over_onnx_fp32_images_per_s": report.ratio("onnx-int8", "onnx-fp32", BATCH),
    }
    benchmark.extra_info.update(
        ratios=ratios,
        similarity={"shape": [M, N, D], "k": 10, "threads": threads, "rounds": ROUNDS, "fprt_p50_s": fprt_s,
                    "faiss_p50_s": faiss_s, "same_top10_indices": float(same)},
        models={"batch": BATCH, "threads": report.threads, "rows": [x.to_dict() for x in report.rows if x.status == "ok"],
                "not_run": {v.key: f"{v.status}: {v.reason}" for v in report.variants if v.status != "ok"},
                "model": report.model, "images": report.images},
        load_average={"before": load_before, "after": load_after},
    )
    print(f"\nheadline ratios ({machine['description']}; load average {load_before} → {load_after}):")
    print(f"  fprt similarity / FAISS time, {M}×{N}×{D} top-10: {ratios['fprt_similarity_time_over_faiss']:.3f}"
          f"  ({fprt_s:.3f} s vs {faiss_s:.3f} s, same top-10 indices {same:.4f})")
    for name in ("onnx_fp32_over_torch_fp32_images_per_s", "onnx_int8_over_onnx_fp32_images_per_s"):
        value = ratios[name]
        print(f"  {name}: {'—' if value is None else f'{value:.2f}×'}")
    report.print()
    assert same > 0.99  # the two searches agree (ties aside): the ratio compares equal work
