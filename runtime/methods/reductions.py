"""The one place the scoring methods ask for similarity reductions.

Every method calls ``search(Q, R, ...)`` and gets, in one pass over Q×R, any of: row top-k, column
top-k, per-group best and statistics of all scores. Values come back as *closeness* — larger
always means more alike: cosine and inner product as they are, L2 as the negative Euclidean
distance — so every rule reads the same for every metric (``to_metric`` turns a closeness back
into the metric's own units for reports and thresholds).

``exclude_self=True`` (Q and R are the same set, in the same order) leaves the diagonal pairs out
of every reduction: real×real rules compare an image with the *other* real images.

The work itself is done by ``fprt.runtime.similarity`` (the C++/CUDA extension, or its torch
fallback), which never materialises the M×N matrix.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

METRICS = ("cosine", "ip", "l2")


def to_closeness(values, metric: str):
    return -values if metric == "l2" else values


def to_metric(closeness, metric: str):
    return -closeness if metric == "l2" else closeness


def row_union(*index_lists: np.ndarray, ascending: bool = False) -> np.ndarray:
    """Row-wise union of index lists (M×c each, −1 = none) → M×w int64, padded with −1 at the end, w the
    largest union (at least 1): each row's indices in the order of their first occurrence, or ascending."""
    x = np.concatenate([np.asarray(a, np.int64) for a in index_lists], axis=1)
    order = np.argsort(x, axis=1, kind="stable")  # equal indices: the first occurrence first
    s = np.take_along_axis(x, order, 1)
    later = np.zeros(x.shape, bool)
    later[:, 1:] = s[:, 1:] == s[:, :-1]
    keep = np.empty(x.shape, bool)
    np.put_along_axis(keep, order, ~later & (s >= 0), 1)
    if ascending:
        keep, x = np.take_along_axis(keep, order, 1), s
    at = np.cumsum(keep, axis=1) - 1
    out = np.full((len(x), max(1, int(keep.sum(1).max(initial=0)))), -1, np.int64)
    r, c = np.nonzero(keep)
    out[r, at[r, c]] = x[r, c]
    return out


@dataclass
class Found:
    row_values: np.ndarray | None = None  # M×k closeness, best first
    row_indices: np.ndarray | None = None  # M×k int64 into R
    col_values: np.ndarray | None = None  # N×c closeness, best first
    col_indices: np.ndarray | None = None  # N×c int64 into Q
    group_best: np.ndarray | None = None  # M×G closeness (-inf for a group with no member)
    count: int = 0
    mean: float = float("nan")
    std: float = float("nan")
    min: float = float("nan")
    max: float = float("nan")


def search(
    queries,
    database,
    *,
    metric: str,
    k: int = 0,
    col_k: int = 0,
    groups: np.ndarray | None = None,
    n_groups: int | None = None,
    stats: bool = False,
    exclude_self: bool = False,
) -> Found:
    """One pass of ``fprt.runtime.similarity`` over queries × database, as closeness."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    kw = dict(metric=metric, k=k, col_k=col_k, groups=groups, n_groups=n_groups, stats=stats, exclude_self=exclude_self)
    if _ENGINE:
        return _ENGINE[-1](queries, database, **kw)
    try:
        from fprt.runtime import similarity
    except ImportError:
        _warn_once()
        return numpy_search(queries, database, **kw)
    return _extension_search(similarity, queries, database, **kw)


_WARNED = []
_ENGINE: list = []


@contextlib.contextmanager
def use_engine(fn):
    """Run every ``search`` inside the block through ``fn`` (same signature, returns ``Found``):
    how a distributed runner (Ray shards merged exactly) replaces the one-process reduction."""
    _ENGINE.append(fn)
    try:
        yield fn
    finally:
        _ENGINE.remove(fn)


def _warn_once() -> None:
    if not _WARNED:
        import logging

        logging.getLogger("fprt.runtime").warning(
            "fprt.runtime.similarity is not importable: similarity reductions run in blocked NumPy (slow)"
        )
        _WARNED.append(True)


def _np(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _drop_self(values: np.ndarray, indices: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (row i ↔ index i) from its best-first list and keep ``want``."""
    rows = len(values)
    out_v = np.full((rows, want), -np.inf, dtype=np.float64)
    out_i = np.full((rows, want), -1, dtype=np.int64)
    own = indices == np.arange(rows)[:, None]
    for i in range(rows):
        keep = ~own[i]
        v, ix = values[i][keep][:want], indices[i][keep][:want]
        out_v[i, : len(v)], out_i[i, : len(ix)] = v, ix
    return out_v, out_i


def _extension_search(similarity, queries, database, *, metric, k, col_k, groups, n_groups, stats, exclude_self) -> Found:
    """``similarity.reduce`` → ``Found`` (closeness, NumPy). ``exclude_self`` asks for one more
    neighbour and removes the diagonal from the lists, and the diagonal's scores from the statistics."""
    m, n = len(queries), len(database)
    if exclude_self:
        if m != n:
            raise ValueError("exclude_self needs the same set as queries and database")
        if groups is not None:
            raise ValueError("exclude_self with groups is not supported")
    row_k = min(k + (1 if exclude_self and k else 0), n)
    col_k2 = min(col_k + (1 if exclude_self and col_k else 0), m)
    res = similarity.reduce(queries, database, metric=metric, row_k=row_k, col_k=col_k2, groups=groups,
                            n_groups=n_groups, stats=stats)
    out = Found()
    if k:
        v, i = to_closeness(_np(res.row_values).astype(np.float64), metric), _np(res.row_indices).astype(np.int64)
        out.row_values, out.row_indices = _drop_self(v, i, k) if exclude_self else (v, i)
    if col_k:
        v, i = to_closeness(_np(res.col_values).astype(np.float64), metric), _np(res.col_indices).astype(np.int64)
        out.col_values, out.col_indices = _drop_self(v, i, col_k) if exclude_self else (v, i)
    if groups is not None:
        out.group_best = to_closeness(_np(res.group_best).astype(np.float64), metric)
    if stats:
        g = res.global_stats.numpy()
        count, mean, m2 = float(g.count), float(g.mean), float(g.m2)
        lo, hi = float(g.min), float(g.max)
        if exclude_self:
            # take the diagonal's scores back out of the moments (Chan et al.'s merge, inverted)
            q = _np(queries).astype(np.float64)
            if metric == "cosine":
                diag = np.ones(m)
            elif metric == "ip":
                diag = (q * q).sum(1)
            else:
                diag = np.zeros(m)
            n_d, mean_d = float(m), float(diag.mean())
            m2_d = float(((diag - mean_d) ** 2).sum())
            n_a = count - n_d
            mean_a = (count * mean - n_d * mean_d) / n_a
            delta = mean_d - mean_a
            m2 = max(m2 - m2_d - delta * delta * n_a * n_d / count, 0.0)
            count, mean = n_a, mean_a
            lo = hi = float("nan")  # the extremes of the off-diagonal scores are not recoverable from moments
        if metric == "l2":
            mean, lo, hi = -mean, -hi, -lo
        out.count, out.mean, out.std, out.min, out.max = int(round(count)), mean, float(np.sqrt(m2 / count)), lo, hi
    return out


def numpy_search(queries, database, *, metric: str, k: int = 0, col_k: int = 0, groups=None, n_groups=None,
                 stats: bool = False, exclude_self: bool = False, block: int | None = None) -> Found:
    """Blocked float64 NumPy reference of ``search`` (tests use it as the oracle; ties → lower index)."""
    from fprt.runtime.methods.base import as_numpy

    q = as_numpy(queries).astype(np.float64)
    r = as_numpy(database).astype(np.float64)
    m, n = len(q), len(r)
    block = block or max(1, min(1024, 4_000_000 // max(n, 1)))
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    out = Found()
    rv = np.full((m, k), -np.inf)
    ri = np.full((m, k), -1, dtype=np.int64)
    cv = np.full((n, col_k), -np.inf)
    ci = np.full((n, col_k), -1, dtype=np.int64)
    g = None
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64)
        n_groups = int(n_groups if n_groups is not None else groups.max() + 1)
        g = np.full((m, n_groups), -np.inf)
    total = total2 = 0.0
    count = 0
    lo, hi = np.inf, -np.inf
    for i0 in range(0, m, block):
        qb = q[i0 : i0 + block]
        if metric == "l2":
            s = -np.sqrt(np.maximum(((qb[:, None, :] - r[None, :, :]) ** 2).sum(-1), 0.0)) if n * len(qb) * q.shape[1] < 5e7 else -np.sqrt(np.maximum((qb**2).sum(1)[:, None] + (r**2).sum(1)[None] - 2 * qb @ r.T, 0))
        else:
            s = qb @ r.T
        valid = np.ones_like(s, dtype=bool)
        if exclude_self:
            rows = np.arange(i0, i0 + len(qb))
            valid[np.arange(len(qb)), rows] = False
        sm = np.where(valid, s, -np.inf)
        if k:
            idx = np.argsort(-sm, axis=1, kind="stable")[:, :k]
            rv[i0 : i0 + len(qb), : idx.shape[1]] = np.take_along_axis(sm, idx, 1)
            ri[i0 : i0 + len(qb), : idx.shape[1]] = idx
        if g is not None:
            for grp in range(n_groups):
                sel = groups == grp
                if sel.any():
                    g[i0 : i0 + len(qb), grp] = sm[:, sel].max(1)
        if stats:
            vals = s[valid]
            total += vals.sum()
            total2 += (vals**2).sum()
            count += vals.size
            if vals.size:
                lo, hi = min(lo, vals.min()), max(hi, vals.max())
    if col_k:
        cblock = max(1, min(1024, 4_000_000 // max(m, 1)))
        for j0 in range(0, n, cblock):
            rb = r[j0 : j0 + cblock]
            if metric == "l2":
                s = -np.sqrt(np.maximum((rb**2).sum(1)[:, None] + (q**2).sum(1)[None] - 2 * rb @ q.T, 0))
            else:
                s = rb @ q.T
            if exclude_self:
                s[np.arange(len(rb)), np.arange(j0, j0 + len(rb))] = -np.inf
            idx = np.argsort(-s, axis=1, kind="stable")[:, :col_k]
            cv[j0 : j0 + len(rb), : idx.shape[1]] = np.take_along_axis(s, idx, 1)
            ci[j0 : j0 + len(rb), : idx.shape[1]] = idx
    if k:
        out.row_values, out.row_indices = rv, ri
    if col_k:
        out.col_values, out.col_indices = cv, ci
    out.group_best = g
    if stats and count:
        mean = total / count
        out.count, out.mean, out.std = count, mean, float(np.sqrt(max(total2 / count - mean * mean, 0.0)))
        out.min, out.max = float(lo), float(hi)
    return out
