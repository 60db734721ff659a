"""The evidence's per-image and per-pair loops on one thread per CPU, with results that never depend on it.

The evidence runs after the embedding, when the cores are free. Its loops call OpenCV, NumPy, BLAS and
torch, which release the GIL, so threads share the work without copies. Every job writes only its own
part of the output (or returns it), so the numbers are the same for any number of threads.
The thread count is ``fprt.data.loader.default_workers`` (one per CPU the process may use, at most 8).
Small fits run on one BLAS thread each (``one_blas_thread``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

CHUNKS_PER_THREAD = 4  # smaller chunks than threads × 1: a thread that is pre-empted holds back less


def _workers() -> int:
    from fprt.data.loader import default_workers

    return default_workers()


def in_chunks(fn: Callable[[int, int], None], n: int, *, min_chunk: int = 32) -> None:
    """``fn(start, stop)`` over consecutive chunks of ``range(n)`` (at least ``min_chunk`` long), side by side.

    ``fn`` writes the results of items start … stop − 1 into an output the caller made."""
    workers = _workers()
    chunk = max(min_chunk, -(-n // (workers * CHUNKS_PER_THREAD)))
    starts = range(0, n, chunk)
    if workers <= 1 or len(starts) <= 1:
        for s in starts:
            fn(s, min(n, s + chunk))
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(starts)), thread_name_prefix="fprt-evidence") as pool:
        for f in [pool.submit(fn, s, min(n, s + chunk)) for s in starts]:
            f.result()


def per_image(fn: Callable[[np.ndarray], np.ndarray], images, out: np.ndarray, *, index=None,
              min_chunk: int = 32) -> np.ndarray:
    """``out[i] = fn(images[i])`` for every image — of ``images[index[i]]`` when an ``index`` is given, without
    copying those images first — in chunks side by side (``in_chunks``); returns ``out``."""

    def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            out[i] = fn(images[i if index is None else index[i]])

    in_chunks(run, len(out), min_chunk=min_chunk)
    return out


def side_by_side(fn, jobs: list) -> list:
    """``[fn(job) for job in jobs]``, the jobs running on one thread per CPU, largest first (the probes on
    thousands of pixels before the centroid): each is independent and single-threaded (one BLAS thread),
    so the results are the same as one after the other, in the same order. A job is (name, arrays, ...):
    its size is the number of values in its arrays."""
    workers = min(len(jobs), _workers())
    if workers <= 1:
        return [fn(job) for job in jobs]

    def size(i: int) -> int:
        return -sum(int(np.size(a)) for a in jobs[i][1] if isinstance(a, np.ndarray))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fprt-evidence") as pool:
        futures = {i: pool.submit(fn, jobs[i]) for i in sorted(range(len(jobs)), key=size)}
        return [futures[i].result() for i in range(len(jobs))]


def one_blas_thread():
    """A context in which BLAS runs on one thread (threadpoolctl): the evidence's fits are small dense
    problems that gain nothing from more, and a multi-threaded BLAS spinning on a busy machine made them
    2–10× slower (measured: the membership fusion 2–3×, the subsets probes 10×)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
