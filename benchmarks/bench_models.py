"""Model throughput: PyTorch eager vs ONNX Runtime fp32 vs ONNX Runtime INT8 (QDQ), batch 64, 2 threads.

    pytest benchmarks/bench_models.py --benchmark-only        (or: python benchmarks/bench_models.py)

Models: the Siamese CNN at 256×256 (1 channel) and a ResNet-18 classifier at 224×224 (3 channels), built by
the trainer's registry with fixed random weights (speed does not depend on the weights). INT8 is
calibrated on synthetic CT-like images (``fprt.export.images.synthetic_images``) with fprt's CPU settings
(QDQ, uint8 activations, int8 per-channel weights, reduce_range). Writes ``benchmarks/results/models.json``.
Compare ratios within one run: absolute numbers move with the machine's other load.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

MODELS = {
    # name: (create_model kwargs, Preprocess kwargs, ModelMeta kind)
    "siamese_cnn": ({"input_size": 256}, {"size": 256}, "embedding"),
    "classifier_resnet18": ({"num_classes": 5}, {"size": 224, "channels": 3, "normalize": "imagenet"}, "classifier"),
}
BATCH = int(os.environ.get("FPRT_BENCH_BATCH", "64"))
THREADS = int(os.environ.get("FPRT_BENCH_THREADS", "2"))


def build(name: str):
    """``(module, meta, fp32 ONNX proto, INT8 ONNX proto, pixels)`` for one benchmark model."""
    import torch

    from fprt.export.graph import to_onnx, wrap
    from fprt.export.images import synthetic_images
    from fprt.export.precision import quantize_int8
    from fprt.modelmeta import ModelMeta
    from fprt.preprocess import Preprocess
    from fprt.trainer import create_model

    kwargs, pre_kwargs, kind = MODELS[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    pre = Preprocess(**pre_kwargs)
    meta = ModelMeta(model=name, kind=kind, task="subsets", preprocess=pre, class_names=[f"t{i}" for i in range(1, 6)])
    proto, _, _ = to_onnx(wrap(model, meta), meta)
    images = synthetic_images(pre, n=64, seed=1)
    int8 = quantize_int8(proto, images.pixels, pre)
    return model, meta, proto, int8, images.pixels


@pytest.fixture(scope="module", params=list(MODELS))
def bench_model(request):
    return request.param, build(request.param)


def _record(name, results):
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / "models.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = results
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.mark.parametrize("backend", ["torch-eager", "ort-fp32", "ort-int8"])
def test_model_throughput(benchmark, bench_model, backend):
    from fprt.export.bench import ort_throughput, torch_throughput

    name, (model, meta, fp32, int8, pixels) = bench_model
    fn = {
        "torch-eager": lambda: torch_throughput(model, pixels, meta.preprocess, batch=BATCH, threads=THREADS, repeats=3),
        "ort-fp32": lambda: ort_throughput(fp32, pixels, meta.preprocess, batch=BATCH, threads=THREADS, repeats=5),
        "ort-int8": lambda: ort_throughput(int8, pixels, meta.preprocess, batch=BATCH, threads=THREADS, repeats=5),
    }[backend]
    result = benchmark.pedantic(fn, rounds=1, iterations=1)
    benchmark.extra_info.update(result.to_dict())
    print(f"\n{name}: {result.line()}")


def main() -> None:
    """Measure every model on every backend, interleaved round-robin (same background load for all),
    print the table and the ratios, save JSON."""
    from fprt.export.bench import interleaved, ort_runner, torch_runner

    rounds = int(os.environ.get("FPRT_BENCH_ROUNDS", "5"))
    all_results = {}
    for name in MODELS:
        model, meta, fp32, int8, pixels = build(name)
        pre = meta.preprocess
        res = interleaved(
            {
                ("torch-eager", "fp32"): torch_runner(model, pixels, pre, batch=BATCH, threads=THREADS),
                ("onnxruntime", "fp32"): ort_runner(fp32, pixels, pre, batch=BATCH, threads=THREADS),
                ("onnxruntime", "int8"): ort_runner(int8, pixels, pre, batch=BATCH, threads=THREADS),
            },
            batch=BATCH, threads=THREADS, rounds=rounds,
        )
        rows = list(res.values())
        eager, f32, i8 = (r.images_per_s for r in rows)
        load = os.getloadavg()[0]
        print(f"{name} (batch {BATCH}, {THREADS} threads, {rounds} interleaved rounds, load average {load:.1f})")
        for r in rows:
            print("  " + r.line())
        print(f"  ratios: ORT fp32 / eager {f32 / eager:.2f}×   ORT INT8 / ORT fp32 {i8 / f32:.2f}×")
        all_results[name] = {"rows": [r.to_dict() for r in rows], "ort_fp32_over_eager": f32 / eager, "int8_over_fp32": i8 / f32,
                             "load_average": load}
        sys.stdout.flush()
    for name, res in all_results.items():
        _record(name, res)


if __name__ == "__main__":
    main()
