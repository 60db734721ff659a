"""Model throughput per backend and precision: the measuring functions ``fprt bench`` and
``benchmarks/bench_models.py`` share.

Every figure is images/s on pre-decoded, pre-resized pixels (the model alone: no decoding, no
similarity), timed with ``time.perf_counter`` over whole batches after warm-up runs; p50/p99 are per
batch. Compare ratios within one run: the machine's other load moves absolute numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Throughput:
    backend: str
    precision: str
    batch: int
    threads: int
    images_per_s: float
    p50_ms: float
    p99_ms: float
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.backend:<12} {self.precision:<5} batch {self.batch:>4}  threads {self.threads}  "
                f"{self.images_per_s:9.1f} img/s  p50 {self.p50_ms:8.1f} ms  p99 {self.p99_ms:8.1f} ms")


def time_batches(fn, *, warmup: int = 2, repeats: int = 10, min_seconds: float = 0.0) -> list[float]:
    """Seconds per call of ``fn()`` after ``warmup`` calls; at least ``repeats`` calls and ``min_seconds``."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _result(backend, precision, batch, threads, times) -> Throughput:
    t = np.asarray(times)
    return Throughput(backend, precision, batch, threads, float(batch / np.median(t)), float(np.median(t) * 1e3),
                      float(np.percentile(t, 99) * 1e3), len(times))


def ort_runner(model, pixels: np.ndarray, preprocess, *, batch: int = 64, threads: int = 2):
    """A no-argument callable running ONNX Runtime (CPU EP) on one ``batch`` (feeds built once, outside timing)."""
    from fprt.export.ort import feeds, input_is_uint8, make_session

    session = make_session(model, threads=threads)
    names = [i.name for i in session.get_inputs()]
    feed = feeds(names, _batch(pixels, batch), preprocess, uint8=input_is_uint8(session))
    return lambda: session.run(None, feed)


def torch_runner(module, pixels: np.ndarray, preprocess, *, batch: int = 64, threads: int = 2, pair: bool = False):
    """A no-argument callable running PyTorch eager (``inference_mode``, ``threads`` intra-op threads) on one batch."""
    import torch

    from fprt.export.ort import pair_partner

    px = _batch(pixels, batch)
    x = torch.from_numpy(preprocess.normalize_uint8(px))
    args = (x, torch.from_numpy(preprocess.normalize_uint8(pair_partner(px)))) if pair else (x,)
    module = module.eval()

    def step():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                module(*args)
        finally:
            torch.set_num_threads(before)

    return step


def _precision_of(model) -> str:
    import onnx

    from fprt.export.precision import graph_precision

    if hasattr(model, "graph"):
        proto = model
    elif isinstance(model, (bytes, bytearray)):
        proto = onnx.load_from_string(bytes(model))
    else:
        proto = onnx.load(str(model))
    return graph_precision(proto)


def ort_throughput(model, pixels: np.ndarray, preprocess, *, batch: int = 64, threads: int = 2, precision: str | None = None,
                   warmup: int = 2, repeats: int = 10) -> Throughput:
    """ONNX Runtime CPU EP images/s on a ``batch`` of N×S×S uint8 pixels."""
    fn = ort_runner(model, pixels, preprocess, batch=batch, threads=threads)
    times = time_batches(fn, warmup=warmup, repeats=repeats)
    return _result("onnxruntime", precision or _precision_of(model), batch, threads, times)


def torch_throughput(module, pixels: np.ndarray, preprocess, *, batch: int = 64, threads: int = 2, pair: bool = False,
                     warmup: int = 2, repeats: int = 10) -> Throughput:
    """PyTorch eager images/s on a ``batch`` of N×S×S uint8 pixels."""
    fn = torch_runner(module, pixels, preprocess, batch=batch, threads=threads, pair=pair)
    times = time_batches(fn, warmup=warmup, repeats=repeats)
    return _result("torch-eager", "fp32", batch, threads, times)


def interleaved(runners: dict, *, batch: int, threads: int, rounds: int = 5, warmup: int = 1) -> dict[str, Throughput]:
    """Time several ``(backend, precision) -> callable`` round-robin, one batch each per round, so that
    all of them see the same background load: the ratios between them stay meaningful on a busy machine."""
    import time

    for fn in runners.values():
        for _ in range(warmup):
            fn()
    times: dict = {key: [] for key in runners}
    for _ in range(rounds):
        for key, fn in runners.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: _result(key[0], key[1], batch, threads, t) for key, t in times.items()}


def _batch(pixels: np.ndarray, batch: int) -> np.ndarray:
    return pixels[np.arange(batch) % len(pixels)]
