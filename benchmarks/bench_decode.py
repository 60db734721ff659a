"""Decoding: PNG and DICOM through ``fprt.data.iter_batches`` — serial vs threads vs processes — and bad-file
screening (``check_files``) at ``decode`` vs ``verify`` level.

    pytest benchmarks/bench_decode.py --benchmark-only -s

Images: the suite's demo set (800 PNGs, 256×256 8-bit) and 200 DICOM CT slices (512×512 int16, rescale +
window tags) made from it (``benchmarks/conftest.py``). Every comparison times its contenders round-robin
(``fprt.export.bench.interleaved``), so they share the background load; a pass over all files is one
"batch", images/s = files / median pass time (pool start-up included: that is what a user pays).
``extra_info`` keeps images/s per contender and the ratios; ``FPRT_BENCH_WORKERS`` sets the pool size
(default: 2, the cores of the development VM), ``FPRT_BENCH_ROUNDS`` the rounds (default 5).
"""

from __future__ import annotations

import os

import pytest

WORKERS = int(os.environ.get("FPRT_BENCH_WORKERS", "2"))
ROUNDS = int(os.environ.get("FPRT_BENCH_ROUNDS", "5"))


def _paths(kind: str, demo_subsets, demo_dicom):
    if kind == "png":
        return sorted(demo_subsets.rglob("*.png"))
    return sorted(demo_dicom.glob("*.dcm"))


def _record(benchmark, results, baseline: str, what: str, n: int, workers: int = WORKERS):
    rates = {name: t.images_per_s for (name, _), t in results.items()}
    benchmark.extra_info.update(
        files=n,
        workers=workers,
        rounds=ROUNDS,
        images_per_s={k: round(v, 1) for k, v in rates.items()},
        ratios_vs=baseline,
        ratios={k: round(v / rates[baseline], 3) for k, v in rates.items() if k != baseline},
        load_average=round(os.getloadavg()[0], 2),
    )
    print(f"\n{what}, {n} files, {workers} workers, {ROUNDS} interleaved rounds, load {os.getloadavg()[0]:.1f}:")
    for name, rate in rates.items():
        extra = "" if name == baseline else f"  ({rate / rates[baseline]:.2f}× {baseline})"
        print(f"  {name:<10} {rate:9.1f} files/s{extra}")


@pytest.mark.benchmark(group="decode")
@pytest.mark.parametrize("kind", ["png", "dicom"])
def test_iter_batches_pools(benchmark, demo_subsets, demo_dicom, kind):
    from fprt.data import iter_batches
    from fprt.export.bench import interleaved
    from fprt.preprocess import Preprocess

    paths = _paths(kind, demo_subsets, demo_dicom)
    pre = Preprocess(size=256)

    def loader(workers: int, executor: str):
        return lambda: sum(len(b) for b in iter_batches(paths, pre, 64, workers, executor=executor))

    runners = {
        ("serial", kind): loader(0, "thread"),
        ("threads", kind): loader(WORKERS, "thread"),
        ("processes", kind): loader(WORKERS, "process"),
    }
    assert runners[("serial", kind)]() == len(paths)
    results = benchmark.pedantic(lambda: interleaved(runners, batch=len(paths), threads=WORKERS, rounds=ROUNDS), rounds=1, iterations=1)
    _record(benchmark, results, "serial", f"iter_batches {kind} decode + resize to 256", len(paths))


@pytest.mark.benchmark(group="check-files")
@pytest.mark.parametrize("kind", ["png", "dicom"])
def test_check_files_levels(benchmark, demo_subsets, demo_dicom, kind):
    from fprt.data import check_files
    from fprt.export.bench import interleaved

    paths = _paths(kind, demo_subsets, demo_dicom)
    runners = {
        ("decode", kind): lambda: check_files(paths, WORKERS, level="decode"),
        ("verify", kind): lambda: check_files(paths, WORKERS, level="verify"),
    }
    assert runners[("verify", kind)]() == []  # every demo file is good
    results = benchmark.pedantic(lambda: interleaved(runners, batch=len(paths), threads=WORKERS, rounds=ROUNDS), rounds=1, iterations=1)
    _record(benchmark, results, "decode", f"check_files {kind}", len(paths))


@pytest.mark.benchmark(group="png-decoders")
def test_png_decoders(benchmark, demo_subsets):
    """The 8-bit gray PNG decoders on the same bytes, one thread: fprt's fast path (Wuffs) against OpenCV's
    libpng (the fast path before) and PIL (everything else); all must give the same pixels."""
    import io

    import numpy as np
    from PIL import Image

    from fprt.data import decode as D
    from fprt.export.bench import interleaved

    blobs = [p.read_bytes() for p in sorted(demo_subsets.rglob("*.png"))]
    wuffs = D._gray8_decoder()
    if wuffs is None:
        pytest.skip("pywuffs is not installed")
    decoders = {
        "wuffs": lambda b: wuffs(b)[..., 0],
        "opencv": D._opencv_gray8,
        "pil": lambda b: np.asarray(Image.open(io.BytesIO(b))),
    }
    for b in blobs[:50]:
        ref = decoders["pil"](b)
        assert all(np.array_equal(f(b), ref) for f in decoders.values())
    runners = {(name, "png"): (lambda f=f: [f(b) for b in blobs]) for name, f in decoders.items()}
    results = benchmark.pedantic(lambda: interleaved(runners, batch=len(blobs), threads=1, rounds=ROUNDS),
                                 rounds=1, iterations=1)
    _record(benchmark, results, "opencv", "8-bit gray PNG decoders", len(blobs), workers=1)

