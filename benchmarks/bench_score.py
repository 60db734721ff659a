"""Throughput of ``fprt score`` end to end against the model alone, measured in the same run.

    python benchmarks/bench_score.py --data /work/team/bigdemo/membership [--model siamese.onnx] [--threads 2]

- model only: ONNX Runtime ``session.run`` on pre-decoded, pre-normalised float32 batches (the best
  the pipeline could do), measured before and after the end-to-end run (the mean is the peer);
- decode only: ``fprt.data.iter_batches`` with the same worker count, nothing else running;
- end to end: ``fprt.runtime.score`` with an empty cache (hash, screen, decode, infer, store,
  similarity, decisions, outputs), with its per-stage breakdown from summary.json.

Goal (issue 7): end-to-end images/s ≥ 85 % of model-only. Without ``--model`` the Siamese CNN of
the trainer (``siamese_cnn``, 256×256, untrained weights: the speed does not depend on them) is
exported to ONNX once into ``--work``. ``pytest benchmarks --benchmark-only`` runs a small version.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def siamese_onnx(work: Path, task: str = "membership") -> Path:
    """Export an untrained siamese_cnn to ONNX (cached in ``work``)."""
    out = work / f"siamese_cnn_{task}.onnx"
    if out.exists():
        return out
    from fprt.export import export_onnx
    from fprt.modelmeta import ModelMeta
    from fprt.preprocess import Preprocess
    from fprt.trainer import create_model

    import torch

    torch.manual_seed(0)
    model = create_model("siamese_cnn").eval()
    meta = ModelMeta(model="siamese_cnn", kind="embedding", task=task, preprocess=Preprocess(size=256),
                     class_names=["not_used", "used"], metric="l2", embedding_dim=256)
    export_onnx(model, out, meta=meta, log=lambda line: None)
    return out


def model_only(model: Path, pixels: np.ndarray, threads: int, batch: int, rounds: int = 1) -> float:
    from fprt.runtime.backends import load_backend

    b = load_backend(model, threads=threads)
    x = b.meta.preprocess.normalize_uint8(pixels)
    sess = b.embed_session.session
    name = "image"
    sess.run(None, {name: x[:batch]})  # warm-up
    t0 = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for i in range(0, len(x), batch):
            sess.run(None, {name: x[i : i + batch]})
            n += len(x[i : i + batch])
    return n / (time.perf_counter() - t0)


def decode_only(paths, size: int, workers: int, batch: int) -> float:
    from fprt.data import iter_batches
    from fprt.preprocess import Preprocess

    t0 = time.perf_counter()
    n = sum(len(b) for b in iter_batches(paths, Preprocess(size=size), batch, workers))
    return n / (time.perf_counter() - t0)


def run(data: Path, model: Path | None, work: Path, *, threads: int, workers: int, batch: int, sample: int,
        method: str | None, check: str) -> dict:
    from fprt.data import discover, iter_batches
    from fprt.runtime import score

    work.mkdir(parents=True, exist_ok=True)
    model = model or siamese_onnx(work)
    layout = discover(data)
    paths = layout.test_real + layout.test_generated
    from fprt.runtime.backends import load_backend

    pre = load_backend(model, threads=threads).meta.preprocess
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(len(paths), size=min(sample, len(paths)), replace=False))
    pixels = np.concatenate([b.pixels for b in iter_batches([paths[i] for i in pick], pre, 256, workers)])
    before = model_only(model, pixels, threads, batch)
    dec = decode_only([paths[i] for i in pick], pre.size, workers, batch)
    out = work / "score_out"
    cache = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=work))
    t0 = time.perf_counter()
    r = score(model, data, out, method=method, threads=threads, workers=workers, batch_size=batch, cache=cache,
              check=check, progress=None)
    wall = time.perf_counter() - t0
    after = model_only(model, pixels, threads, batch)
    peer = (before + after) / 2
    s = r.summary
    e2e = s["counts"]["images_total"] / wall
    t = s["timings"]
    stage_s = {k: v["seconds"] for k, v in t.items() if isinstance(v, dict)}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "images": s["counts"]["images_total"],
        "model": str(model),
        "method": r.method,
        "threads": threads,
        "workers": workers,
        "batch": batch,
        "check": check,
        "model_only_img_s": {"before": round(before, 1), "after": round(after, 1), "mean": round(peer, 1)},
        "decode_only_img_s": round(dec, 1),
        "end_to_end_img_s": round(e2e, 1),
        "ratio_end_to_end_vs_model_only": round(e2e / peer, 3),
        "pipeline_img_s": s["model_images_per_s"],
        "ratio_pipeline_vs_model_only": round(s["model_images_per_s"] / peer, 3) if s["model_images_per_s"] else None,
        "wall_s": round(wall, 2),
        "stage_seconds": stage_s,
        "infer_busy_img_s": s["infer_only_images_per_s"],
    }
    return result


def print_table(res: dict) -> None:
    print(f"fprt score benchmark — {res['images']} images, {res['method']}, {res['threads']} model threads, "
          f"{res['workers']} decode workers, batch {res['batch']}")
    print(f"  model only (ORT, pre-decoded)   {res['model_only_img_s']['mean']:8.1f} img/s  "
          f"(before {res['model_only_img_s']['before']}, after {res['model_only_img_s']['after']})")
    print(f"  decode only (iter_batches)      {res['decode_only_img_s']:8.1f} img/s")
    print(f"  end to end (fprt score)         {res['end_to_end_img_s']:8.1f} img/s  = {100 * res['ratio_end_to_end_vs_model_only']:.1f} % of model only")
    if res["pipeline_img_s"]:
        print(f"  decode→infer→store stages only  {res['pipeline_img_s']:8.1f} img/s  = {100 * res['ratio_pipeline_vs_model_only']:.1f} %")
    print("  stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in res["stage_seconds"].items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a membership dataset with a test split (e.g. 10k real + 25k generated)")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fprt-bench-score")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--sample", type=int, default=2048, help="images decoded up front for the model-only peer")
    p.add_argument("--method", default=None)
    p.add_argument("--check", default="verify", choices=["verify", "decode"])
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = p.parse_args(argv)
    res = run(a.data, a.model, a.work, threads=a.threads, workers=a.workers, batch=a.batch, sample=a.sample,
              method=a.method, check=a.check)
    print_table(res)
    if a.json:
        from fprt.io import atomic_write_json

        atomic_write_json(a.json, res)
    return 0


def test_score_throughput_small(benchmark, tmp_path):
    """pytest-benchmark: the same comparison on a small demo set (make bench)."""
    from fprt.demo import make_demo_data

    data = tmp_path / "mem"
    make_demo_data(data, "membership", n_used=10, n_not_used=10, n_generated=20, n_test_used=50, n_test_not_used=50,
                   n_test_generated=200, progress=False)
    res = benchmark.pedantic(lambda: run(data, None, tmp_path / "work", threads=2, workers=2, batch=64, sample=256,
                                         method=None, check="verify"), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["end_to_end_img_s"] > 0


if __name__ == "__main__":
    sys.exit(main())
