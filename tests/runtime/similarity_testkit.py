"""Data and references for the similarity tests (tests/runtime/test_similarity*.py).

References: scipy's float64 cdist and NumPy float64 brute force (independent oracles, compared with the
gap rule of issue 6), and the exact ranking (float64 keys in the extension's fixed order, rounded to
float32, ties to the lower index) for the bit-exact claims.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import cdist

METRIC_CODE = {"cosine": 0, "ip": 1, "l2": 2}


def random_data(seed: int, m: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, d)).astype(np.float32), rng.standard_normal((n, d)).astype(np.float32)


def clustered_data(seed: int, m: int, n: int, d: int, centers: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Tight clusters, exact duplicates and near-duplicates (1e-6 apart) within and across Q and R."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)) * 3.0

    def draw(k):
        return c[rng.integers(0, centers, k)] + 0.3 * rng.standard_normal((k, d))

    q, r = draw(m), draw(n)
    for x, size in ((q, m), (r, n)):
        nd = max(1, size // 10)
        x[rng.integers(0, size, nd)] = x[rng.integers(0, size, nd)]  # exact duplicates
        near = rng.integers(0, size, nd)
        x[near] = x[rng.integers(0, size, nd)] + 1e-6 * rng.standard_normal((nd, d))  # near-duplicates
    cross = rng.integers(0, m, max(1, m // 5))
    q[cross] = r[rng.integers(0, n, cross.size)] + 1e-7 * rng.standard_normal((cross.size, d))  # Q near copies of R
    return q.astype(np.float32), r.astype(np.float32)


def scores64(q: np.ndarray, r: np.ndarray, metric: str) -> np.ndarray:
    """float64 scores from scipy / NumPy: cosine similarity, inner product, or Euclidean distance."""
    q64, r64 = q.astype(np.float64), r.astype(np.float64)
    if metric == "cosine":
        return 1.0 - cdist(q64, r64, "cosine")
    if metric == "ip":
        return q64 @ r64.T
    return cdist(q64, r64, "euclidean")


def closeness(values: np.ndarray, metric: str) -> np.ndarray:
    return -values if metric == "l2" else values


def assert_topk_matches(values, indices, ref_scores, metric, gap=1e-5, rtol=1e-5, atol=1e-7):
    """Issue 6's rule: values within 1e-5 relative of the reference's sorted scores; indices equal wherever
    the score is more than `gap` away from its neighbours in the reference order."""
    values, indices = np.asarray(values), np.asarray(indices)
    k = values.shape[1]
    close = closeness(ref_scores, metric)
    order = np.argsort(-close, axis=1, kind="stable")
    ref_sorted = np.take_along_axis(ref_scores, order, 1)
    np.testing.assert_allclose(values, ref_sorted[:, :k], rtol=rtol, atol=atol)
    cs = np.take_along_axis(close, order, 1)
    scale = np.maximum(1.0, np.abs(cs[:, : k + 1]))
    before = np.concatenate([np.full((cs.shape[0], 1), np.inf), cs[:, : k - 1] - cs[:, 1:k]], axis=1)
    after = cs[:, :k] - cs[:, 1 : k + 1] if cs.shape[1] > k else np.full((cs.shape[0], k), np.inf)
    separated = (before > gap * scale[:, :k]) & (after > gap * scale[:, :k])
    assert separated.mean() > 0.1, "test data too degenerate: few separated scores"
    np.testing.assert_array_equal(indices[separated], order[:, :k][separated])


def exact_rank_values(q: np.ndarray, r: np.ndarray, metric: str) -> np.ndarray:
    """float32 rank values (larger is closer) of all pairs from the exact fixed-order float64 keys.

    Computed by the extension's ``exact_keys`` when it is loaded (fast), else by the pure-torch
    implementation; test_exact_keys_match_between_extension_and_fallback_and_scipy proves the two
    bit-identical (and within 1e-12 of scipy)."""
    from fprt.runtime import extension_loader
    from fprt.runtime import similarity_fallback as fb

    m = METRIC_CODE[metric]
    qt, rt = torch.from_numpy(np.ascontiguousarray(q, np.float32)), torch.from_numpy(np.ascontiguousarray(r, np.float32))
    M, N = qt.shape[0], rt.shape[0]
    ia = torch.arange(M).repeat_interleave(N)
    ib = torch.arange(N).repeat(M)
    ext = extension_loader.load("cpu").module
    if ext is not None:
        keys = ext.exact_keys(qt, rt, m, ia, ib).view(M, N)
    else:
        qn, rn = fb.exact_sqrt(fb.exact_self(qt)), fb.exact_sqrt(fb.exact_self(rt))
        keys = fb.exact_keys(m, qt, rt, ia, ib, qn, rn).view(M, N)
    return fb.rank_value(m, keys).numpy()


def exact_topk(rv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of rank values by (value desc, index asc): (rank values, indices)."""
    idx = np.broadcast_to(np.arange(rv.shape[1]), rv.shape)
    order = np.lexsort((idx, -rv), axis=1)[:, :k]
    return np.take_along_axis(rv, order, 1), order


def to_output(rv: np.ndarray, metric: str) -> np.ndarray:
    return -rv if metric == "l2" else rv


def stats_atol(q: np.ndarray, r: np.ndarray, metric: str) -> float:
    """Absolute tolerance of statistics, which are computed from the float32 GEMM scores: a few float32
    roundings of the largest score; for L2 also the expanded form's error near distance 0, i.e. the square
    root of its bound (D + 8) * 2^-24 * (max|q|^2 + max|r|^2)."""
    q64, r64 = q.astype(np.float64), r.astype(np.float64)
    nq, nr = np.linalg.norm(q64, axis=1).max(), np.linalg.norm(r64, axis=1).max()
    if metric == "cosine":
        return 1e-6
    if metric == "ip":
        return 1e-6 * nq * nr
    return 1e-6 * (nq + nr) + np.sqrt((q.shape[1] + 8) * 2.0**-24 * (nq**2 + nr**2))


def assert_stats_close(a, b, atol: float, rtol: float = 1e-6) -> None:
    """Two sets of Moments (row / column / global) equal within the statistics' tolerance."""
    a, b = a.numpy(), b.numpy()
    np.testing.assert_array_equal(a.count, b.count)
    for f in ("mean", "std", "min", "max"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=atol, err_msg=f)
