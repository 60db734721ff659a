"""`fprt score --ray auto` against the local run on the same data and model, plus the per-stage rates behind
the README's scaling estimate.

    python benchmarks/bench_ray.py --data /work/team/bigdemo/membership [--model siamese.onnx] [--json out.json]

1. local: ``fprt.runtime.score`` with an empty cache (hash, screen, decode → infer → store, similarity,
   decisions, outputs);
2. ray: ``score_on_ray(..., ray="auto")`` with another empty cache — starting the local Ray instance
   and shutting it down are inside the timing, as a user sees them;
   ``--order ray,local`` swaps the order (the page cache then favours the local run instead);
3. run.csv and scores.csv compared byte for byte;
4. per-stage rates on ONE core (the units of the scaling estimate): read + content hash, PNG decode + resize (``iter_batches``, 0 workers), the model (ORT, 1 thread,
   pre-decoded batches), the similarity extension (1 thread: score pairs/s, row top-5 + column
   top-1); and what stays serial on the driver per image (discover, cache lookup, outputs).

Goal (issue 9): the Ray run within 1.3× of the local run on this 2-core machine. Other jobs share the
cores: the 1-minute load average is recorded before and after each run. Without ``--model`` the
untrained Siamese CNN of ``bench_score.py`` (256×256, D = 256) is exported once into ``--work``.
``pytest benchmarks/bench_ray.py --benchmark-only`` runs a small version of the same comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _stage_seconds(summary: dict) -> dict:
    return {k: v["seconds"] for k, v in summary["timings"].items() if isinstance(v, dict)}


def timed_runs(model: Path, data: Path, work: Path, *, order=("local", "ray"), batch: int = 64, method=None,
               check: str = "verify") -> dict:
    """The two runs, each on an empty cache of its own; outputs compared byte for byte."""
    from fprt.runtime import score
    from fprt.runtime.distributed import score_on_ray

    runs = {}
    for name in order:
        out = work / f"out-{name}"
        cache = Path(tempfile.mkdtemp(prefix=f"cache-{name}-", dir=work))
        load_before = _load()
        t0 = time.perf_counter()
        if name == "local":
            r = score(model, data, out, method=method, batch_size=batch, cache=cache, check=check, plots=False)
        else:
            r = score_on_ray(model, data, out, ray="auto", method=method, batch_size=batch, cache=cache, check=check,
                             plots=False)
        wall = time.perf_counter() - t0
        runs[name] = {"wall_s": round(wall, 2), "load_before": load_before, "load_after": _load(),
                      "images": r.summary["counts"]["images_total"], "img_s": round(r.summary["counts"]["images_total"] / wall, 2),
                      "stage_seconds": _stage_seconds(r.summary), "method": r.method, "out": str(out)}
        if name == "ray":
            runs[name]["ray"] = r.summary["ray"]
    same = {f: (Path(runs["local"]["out"]) / f).read_bytes() == (Path(runs["ray"]["out"]) / f).read_bytes()
            for f in ("run.csv", "scores.csv")}
    return {"runs": runs, "ratio_ray_vs_local": round(runs["ray"]["wall_s"] / runs["local"]["wall_s"], 3),
            "identical_outputs": same}


def stage_rates(model: Path, paths: list[Path], *, sample: int = 512, sim_queries: int = 2048,
                sim_database: int = 10_000) -> dict:
    """Per-core rates on this machine as it is loaded now: read + content hash, decode+resize (the decode is also
    the bad-file check: one read per file, ``pipeline.load_file``),
    the model (ORT, 1 thread), the similarity extension (1 thread: score pairs/s, row top-5 + column top-1)."""
    import torch

    from fprt.data import iter_batches
    from fprt.runtime import similarity as sim
    from fprt.runtime.backends import load_backend
    from fprt.runtime.pipeline import hash_files

    rng = np.random.default_rng(0)
    pick = [paths[i] for i in sorted(rng.choice(len(paths), size=min(sample, len(paths)), replace=False))]
    t0 = time.perf_counter()
    hash_files(pick, workers=1)
    hashing = len(pick) / (time.perf_counter() - t0)

    backend = load_backend(model, threads=1)
    pre = backend.meta.preprocess
    t0 = time.perf_counter()
    pixels = np.concatenate([b.pixels for b in iter_batches(pick, pre, 64, 0)])
    decode = len(pick) / (time.perf_counter() - t0)

    backend.infer(pixels[:8])  # warm-up
    t0 = time.perf_counter()
    dim = None
    for i in range(0, len(pixels), 64):
        dim = np.asarray(backend.infer(pixels[i:i + 64])["embedding"]).shape[1]
    embed = len(pixels) / (time.perf_counter() - t0)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        q = rng.standard_normal((sim_queries, dim)).astype(np.float32)
        r = rng.standard_normal((sim_database, dim)).astype(np.float32)
        sim.reduce(q[:64], r, metric="l2", row_k=5, col_k=1)  # warm-up / load the extension
        t0 = time.perf_counter()
        res = sim.reduce(q, r, metric="l2", row_k=5, col_k=1)
        pairs = sim_queries * sim_database / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return {"hash_img_s_per_core": round(hashing, 1),
            "decode_img_s_per_core": round(decode, 1), "embed_img_s_per_core": round(embed, 1),
            "similarity_pairs_s_per_core": round(pairs, 0), "embedding_dim": int(dim), "similarity_backend": res.backend,
            "sample_images": len(pick), "load": _load()}


def audit_estimate(rates: dict, driver_s_per_image: float, *, generated: float = 1e6, real: float = 1e5,
                   nodes=(1, 4, 16, 64), cores: int = 16) -> list[dict]:
    """Hours of a generated × real audit on N nodes of ``cores`` cores, from the measured per-core rates.

    files: the read and content hash of every image (on the workers, in their one read: ``pipeline.load_file``);
    embed: decode (also the bad-file check) + the model, every image once; similarity: generated × real (row top-k + column top-1)
    plus real × real (VCMI's rules); driver: what stays serial on the driver per image (discovering the
    files, the cache lookup, writing the outputs), measured in the Ray run. Stages overlap only within
    embed, so the hours add up; file reads from shared storage are not included."""
    images = generated + real
    core_s = {
        "files": images / rates["hash_img_s_per_core"],
        "embed": images * (1 / rates["decode_img_s_per_core"] + 1 / rates["embed_img_s_per_core"]),
        "similarity": (generated * real + real * real) / rates["similarity_pairs_s_per_core"],
    }
    out = []
    for n in nodes:
        slots = n * cores
        stages = {k: v / slots for k, v in core_s.items()}
        stages["driver"] = images * driver_s_per_image
        out.append({"nodes": n, "cores": slots, **{f"{k}_h": round(v / 3600, 3) for k, v in stages.items()},
                    "total_h": round(sum(stages.values()) / 3600, 3), "limited_by": max(stages, key=stages.get)})
    return out


def run(data: Path, model: Path | None, work: Path, *, order, batch: int, method, check: str, sample: int) -> dict:
    from fprt.data import discover

    work.mkdir(parents=True, exist_ok=True)
    if model is None:
        sys.path.insert(0, str(HERE))
        from bench_score import siamese_onnx

        model = siamese_onnx(work)
    res = timed_runs(model, data, work, order=order, batch=batch, method=method, check=check)
    ray_stages = res["runs"]["ray"]["stage_seconds"]
    images = res["runs"]["ray"]["images"]
    serial = sum(ray_stages.get(k, 0.0) for k in ("discover", "cache_lookup", "write_outputs"))
    layout = discover(data)
    rates = stage_rates(model, list(layout.test_real) + list(layout.test_generated), sample=sample)
    res.update({"model": str(model), "data": str(data), "machine": _machine(), "per_core": rates,
                "driver_serial_s_per_image": serial / max(images, 1),
                "audit_1m_x_100k": audit_estimate(rates, serial / max(images, 1))})
    return res


def _machine() -> str:
    import platform

    try:
        from fprt.runtime.bench import machine_info

        return machine_info("cpu")["description"]
    except Exception:  # noqa: BLE001
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def print_report(res: dict) -> None:
    lr, rr = res["runs"]["local"], res["runs"]["ray"]
    print(f"fprt score --ray auto vs local — {lr['images']} images, {lr['method']}, {res['machine']}")
    for name, r in (("local", lr), ("ray auto", rr)):
        print(f"  {name:9s} {r['wall_s']:9.1f} s  {r['img_s']:8.1f} img/s   load {r['load_before']} → {r['load_after']}")
    print(f"  ratio ray/local: {res['ratio_ray_vs_local']:.3f}   identical outputs: {res['identical_outputs']}")
    print("  ray stages: " + ", ".join(f"{k} {v:.1f}" for k, v in rr["stage_seconds"].items()))
    p = res["per_core"]
    print(f"  per core: read + hash {p['hash_img_s_per_core']} img/s, "
          f"decode {p['decode_img_s_per_core']} img/s, model {p['embed_img_s_per_core']} img/s, "
          f"similarity {p['similarity_pairs_s_per_core']:.3g} pairs/s (D={p['embedding_dim']}); "
          f"driver serial {1e3 * res['driver_serial_s_per_image']:.3f} ms/img")
    print("  1,000,000 x 100,000 audit (16-core nodes):")
    for row in res["audit_1m_x_100k"]:
        print(f"    {row['nodes']:3d} nodes: files {row['files_h']:.2f} h, embed {row['embed_h']:.2f} h, "
              f"similarity {row['similarity_h']:.2f} h, driver {row['driver_h']:.3f} h → {row['total_h']:.2f} h, "
              f"limited by {row['limited_by']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a membership dataset with a test split (35k demo images)")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fprt-bench-ray")
    p.add_argument("--order", default="local,ray", help="local,ray or ray,local")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--method", default=None)
    p.add_argument("--check", default="verify", choices=["verify", "decode"])
    p.add_argument("--sample", type=int, default=512, help="images for the per-core decode/model rates")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = p.parse_args(argv)
    os.environ.setdefault("FPRT_NO_PROGRESS", "1")
    res = run(a.data, a.model, a.work, order=tuple(a.order.split(",")), batch=a.batch, method=a.method, check=a.check,
              sample=a.sample)
    print_report(res)
    if a.json:
        from fprt.io import atomic_write_json

        atomic_write_json(a.json, res)
    return 0


def test_ray_overhead_small(benchmark, tmp_path):
    """pytest-benchmark: the same comparison on a small membership demo set (make bench)."""
    import pytest

    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    from fprt.demo import make_demo_data

    data = tmp_path / "mem"
    make_demo_data(data, "membership", n_used=10, n_not_used=10, n_generated=20, n_test_used=50, n_test_not_used=50,
                   n_test_generated=200, progress=False)
    res = benchmark.pedantic(lambda: run(data, None, tmp_path / "work", order=("local", "ray"), batch=64, method=None,
                                         check="verify", sample=64), rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in res.items() if k != "machine"})
    assert all(res["identical_outputs"].values())


if __name__ == "__main__":
    sys.exit(main())
