"""The similarity step cut into blocks and merged exactly — Ray-free (the Ray layer runs the blocks as tasks).

A search of queries Q (M×D) against a database R (N×D) is cut into blocks: consecutive query shards
× consecutive database shards. Each block is one ``fprt.runtime.similarity.reduce`` call (the C++/CUDA
extension) returning only its reductions; ``merge_blocks`` puts them together with the extension's
exact merge helpers (``merge_database_shards`` per query shard, then ``merge_query_shards``), and
``to_found`` turns the result into the ``reductions.Found`` the scoring methods read (closeness:
larger = more alike; L2 as the negative distance).

    found = search_blocks(Q, R, metric="cosine", k=5, col_k=1, query_shards=4)       # in-process
    found = search_blocks(Q, R, metric="cosine", k=5, run=ray_runner)               # blocks as Ray tasks

Exactness: top-k lists and group bests are exactly the one-pass result (ties to the lower global
index) whatever the cut; statistics are merged in float64 (parallel Welford) and agree with the
one-pass statistics to float64 rounding.

``exclude_self=True`` (Q and R are the same set in the same order) leaves the self pairs (global
query index == global database index) out of every reduction: each block holding part of the
diagonal asks for one list entry more and drops its own; statistics remove the self scores (the
exact float64 self score: 1 for cosine, |q|² for ip, 0 for L2) from count/mean/m2, and the best
end (max closeness) comes from the best *other* entry of each row/column. The worst end (min
closeness) is left as reduced: it includes a self score only where that is a row's worst score,
which for cosine and L2 means every score of that row is equal (the same value). Per-group bests
with ``exclude_self`` are not supported (no scoring method asks for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from fprt.errors import InputError


@dataclass(frozen=True)
class Block:
    """Queries ``[q0, q1)`` against database rows ``[r0, r1)`` (global indices)."""

    q0: int
    q1: int
    r0: int
    r1: int


@dataclass(frozen=True)
class SearchArgs:
    """What every block computes (the arguments of ``reductions.search`` plus where to run)."""

    metric: str
    k: int = 0
    col_k: int = 0
    n_groups: int | None = None
    stats: bool = False
    exclude_self: bool = False
    device: str | None = None


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive ranges covering ``[0, n)``, sizes differing by at most one (first ones larger)."""
    parts = max(1, min(int(parts), n)) if n else 1
    base, extra = divmod(n, parts)
    out, s = [], 0
    for i in range(parts):
        e = s + base + (1 if i < extra else 0)
        out.append((s, e))
        s = e
    return out


def plan_blocks(m: int, n: int, query_shards: int = 1, database_shards: int = 1) -> list[Block]:
    """Blocks in query-shard-major order: every database shard of query shard 0, then of 1, ..."""
    return [Block(q0, q1, r0, r1) for q0, q1 in split(m, query_shards) for r0, r1 in split(n, database_shards)]


def _np(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _moments_np(mo):
    from fprt.runtime.similarity import Moments

    return None if mo is None else Moments(*(np.array(_np(getattr(mo, f)), dtype=np.float64) for f in ("count", "mean", "m2", "min", "max")))


# ---------------------------------------------------------------------------------------------- one block
def reduce_block(Q, R, groups, q_offset: int, r_offset: int, a: SearchArgs):
    """``similarity.reduce`` of one block whose first query / database row have global indices
    ``q_offset`` / ``r_offset``; with ``a.exclude_self`` the self pairs are left out (see the module
    docstring). Returns a ``Reductions`` of NumPy arrays with indices local to the block."""
    from fprt.runtime import similarity as sim

    Q, R = _aligned(Q), _aligned(R)
    m, n = int(Q.shape[0]), int(R.shape[0])
    lo, hi = max(q_offset, r_offset), min(q_offset + m, r_offset + n)
    diag = np.arange(lo, hi, dtype=np.int64) if a.exclude_self and lo < hi else np.zeros(0, np.int64)
    d = len(diag)
    if d and groups is not None:
        raise InputError("per-group bests with exclude_self are not supported")
    extra = 1 if d else 0
    row_k = min(a.k + extra, n) if a.k else 0
    col_k = min(a.col_k + extra, m) if a.col_k else 0
    best_end = a.exclude_self and a.stats
    if best_end:  # the best score of each row / column other than its own (exact, from the lists)
        row_k, col_k = max(row_k, min(1 + extra, n)), max(col_k, min(1 + extra, m))
    red = sim.reduce(Q, R, metric=a.metric, row_k=row_k, col_k=col_k, groups=groups,
                     n_groups=a.n_groups if groups is not None else None, stats=a.stats, device=a.device)
    for f in ("row_values", "row_indices", "col_values", "col_indices", "group_best", "group_arg"):
        setattr(red, f, _np(getattr(red, f)))
    for f in ("row_stats", "col_stats", "global_stats"):
        setattr(red, f, _moments_np(getattr(red, f)))
    if not a.exclude_self:
        return red

    rows, cols = diag - q_offset, diag - r_offset
    worst = -np.inf if red.larger_is_closer else np.inf
    row_best = col_best = None
    if red.row_values is not None:
        self_col = np.full(m, -2, dtype=np.int64)
        self_col[rows] = cols
        red.row_values, red.row_indices, row_best = _drop_self(red.row_values, red.row_indices, self_col,
                                                               min(a.k, n), worst)
    if red.col_values is not None:
        self_row = np.full(n, -2, dtype=np.int64)
        self_row[cols] = rows
        red.col_values, red.col_indices, col_best = _drop_self(red.col_values, red.col_indices, self_row,
                                                               min(a.col_k, m), worst)
    if a.stats:
        s = _self_scores(Q, rows, a.metric)
        red.row_stats = _remove(red.row_stats, rows, s, row_best, red.larger_is_closer)
        red.col_stats = _remove(red.col_stats, cols, s, col_best, red.larger_is_closer)
        red.global_stats = _remove_global(red.global_stats, s, red.row_stats, red.larger_is_closer)
    if not a.k:
        red.row_values = red.row_indices = None
    if not a.col_k:
        red.col_values = red.col_indices = None
    return red


def _aligned(x):
    """``x`` itself when it starts on a 16-byte boundary, else a copy that does. The extension's float32
    GEMM (MKL) rounds a score differently depending on its inputs' alignment, so a shard sliced at an
    odd row (D not a multiple of 4) would give statistics that differ in the last bits from the same
    rows elsewhere; object-store arrays (Ray) and fresh NumPy arrays are already aligned."""
    if isinstance(x, np.ndarray) and x.ctypes.data % 16:
        return np.array(x, copy=True)
    return x


def _drop_self(values, indices, self_index, width: int, worst: float):
    """(values, indices) without each list's self entry (or its last entry where self is not listed),
    ``width`` wide, and the best score other than self per list (``worst`` where there is none)."""
    mask = indices == self_index[:, None]
    order = np.argsort(mask, axis=1, kind="stable")  # the self entry (if any) moves to the end
    v = np.take_along_axis(values, order, 1)
    i = np.take_along_axis(indices, order, 1)
    moved = np.take_along_axis(mask, order, 1)
    v = np.where(moved, worst, v).astype(values.dtype)
    i = np.where(moved, -1, i)
    best = v[:, 0].astype(np.float64) if v.shape[1] else np.full(len(v), worst)
    return v[:, :width], i[:, :width], best


def _self_scores(Q, rows: np.ndarray, metric: str) -> np.ndarray:
    """The exact (float64) score of each query with itself: 1 (cosine), |q|² (ip), 0 (L2)."""
    if metric == "cosine":
        return np.ones(len(rows))
    if metric == "l2":
        return np.zeros(len(rows))
    q = _np(Q)[rows].astype(np.float64)
    return np.einsum("ij,ij->i", q, q)


def _remove(mo, where: np.ndarray, s: np.ndarray, best: np.ndarray, larger_is_closer: bool):
    """Per-row (or per-column) moments with the self score ``s[j]`` taken out of entry ``where[j]``; the
    best end (max closeness) of every entry replaced by ``best``, the exact best score other than self."""
    from fprt.runtime.similarity import Moments

    count, mean, m2 = mo.count.copy(), mo.mean.copy(), mo.m2.copy()
    lo, hi = mo.min.copy(), mo.max.copy()
    if len(where):
        c = count[where] - 1
        mu = mean[where]
        safe = np.where(c > 0, c, 1)
        new_mean = np.where(c > 0, mu + (mu - s) / safe, 0.0)
        new_m2 = np.where(c > 0, np.maximum(m2[where] - (s - mu) * (s - new_mean), 0.0), 0.0)
        count[where], mean[where], m2[where] = c, new_mean, new_m2
    if larger_is_closer:
        hi = np.where(count > 0, best, -np.inf)
    else:
        lo = np.where(count > 0, best, np.inf)
    return Moments(count, mean, m2, lo, hi)


def _remove_global(g, s: np.ndarray, row_stats, larger_is_closer: bool):
    """Global moments without the self scores ``s`` (reverse Chan merge); best end from the rows."""
    from fprt.runtime.similarity import Moments

    n, mean, m2 = float(g.count), float(g.mean), float(g.m2)
    nd = float(len(s))
    mean_d = float(s.mean()) if len(s) else 0.0
    m2_d = float(((s - mean_d) ** 2).sum())
    rest = n - nd
    if not len(s):
        new_mean, new_m2 = mean, m2
    elif rest > 0:
        new_mean = (n * mean - nd * mean_d) / rest
        delta = mean_d - new_mean
        new_m2 = max(m2 - m2_d - delta * delta * rest * nd / n, 0.0)
    else:
        new_mean, new_m2 = 0.0, 0.0
    lo, hi = float(g.min), float(g.max)
    has = row_stats.count > 0
    if larger_is_closer:
        hi = float(row_stats.max[has].max()) if has.any() else -np.inf
    else:
        lo = float(row_stats.min[has].min()) if has.any() else np.inf
    return Moments(*(np.array(x, dtype=np.float64) for x in (rest, new_mean, new_m2, lo, hi)))


# ---------------------------------------------------------------------------------------------- merge + Found
def merge_blocks(blocks: Sequence[Block], parts: Sequence[Any], a: SearchArgs, m: int, n: int):
    """Exact merge of the blocks' ``Reductions`` (in ``plan_blocks`` order) with the extension's helpers."""
    from fprt.runtime.similarity import merge_database_shards, merge_query_shards

    if len(parts) != len(blocks):
        raise InputError(f"{len(parts)} results for {len(blocks)} blocks")
    by_query: dict[tuple[int, int], list[tuple[Block, Any]]] = {}
    for b, p in zip(blocks, parts):
        by_query.setdefault((b.q0, b.q1), []).append((b, p))
    query_parts, query_offsets = [], []
    for (q0, _), items in by_query.items():
        if len(items) == 1:
            query_parts.append(items[0][1])
        else:
            query_parts.append(merge_database_shards([p for _, p in items], offsets=[b.r0 for b, _ in items],
                                                     row_k=min(a.k, n) if a.k else None))
        query_offsets.append(q0)
    if len(query_parts) == 1:
        return query_parts[0]
    return merge_query_shards(query_parts, offsets=query_offsets, col_k=min(a.col_k, m) if a.col_k else None)


def to_found(red, a: SearchArgs):
    """The merged ``Reductions`` as ``reductions.Found``: closeness (L2 negated), lists padded to k with (-inf, -1)."""
    from fprt.runtime.methods.reductions import Found

    sign = 1.0 if red.larger_is_closer else -1.0
    out = Found()

    def lists(values, indices, k):
        v = sign * _np(values).astype(np.float64)
        i = _np(indices).astype(np.int64)
        if v.shape[1] < k:
            pad = k - v.shape[1]
            v = np.concatenate([v, np.full((len(v), pad), -np.inf, dtype=v.dtype)], axis=1)
            i = np.concatenate([i, np.full((len(i), pad), -1, dtype=np.int64)], axis=1)
        return v, np.where(np.isfinite(v), i, -1)

    if a.k:
        out.row_values, out.row_indices = lists(red.row_values, red.row_indices, a.k)
    if a.col_k:
        out.col_values, out.col_indices = lists(red.col_values, red.col_indices, a.col_k)
    if red.group_best is not None:
        out.group_best = sign * _np(red.group_best).astype(np.float64)
    if a.stats and red.global_stats is not None:
        g = _moments_np(red.global_stats)
        count = int(g.count)
        if count:
            lo, hi = (float(g.min), float(g.max)) if sign > 0 else (-float(g.max), -float(g.min))
            out.count, out.mean, out.std = count, sign * float(g.mean), float(np.sqrt(max(float(g.m2) / count, 0.0)))
            out.min, out.max = lo, hi
    return out


def search_args(metric: str, *, k: int = 0, col_k: int = 0, groups=None, n_groups=None, stats: bool = False,
                exclude_self: bool = False, device: str | None = None) -> tuple[SearchArgs, np.ndarray | None]:
    """Checked ``SearchArgs`` and the groups as an int64 array (``n_groups`` defaults to max label + 1)."""
    from fprt.runtime.methods.reductions import METRICS

    if metric not in METRICS:
        raise InputError(f"metric must be one of {METRICS}, got {metric!r}")
    g = None
    if groups is not None:
        g = np.asarray(_np(groups), dtype=np.int64)
        n_groups = int(n_groups if n_groups is not None else (g.max() + 1 if len(g) else 0))
    return SearchArgs(metric=metric, k=int(k), col_k=int(col_k), n_groups=n_groups if g is not None else None,
                      stats=bool(stats), exclude_self=bool(exclude_self), device=device), g


Runner = Callable[[Sequence[Block], Any, Any, "np.ndarray | None", SearchArgs], list]


def run_local(blocks: Sequence[Block], Q, R, groups, a: SearchArgs) -> list:
    """Reduce the blocks one after the other in this process."""
    return [reduce_block(Q[b.q0:b.q1], R[b.r0:b.r1], None if groups is None else groups[b.r0:b.r1], b.q0, b.r0, a)
            for b in blocks]


def search_blocks(queries, database, *, metric: str, k: int = 0, col_k: int = 0, groups=None, n_groups=None,
                  stats: bool = False, exclude_self: bool = False, query_shards: int = 1, database_shards: int = 1,
                  device: str | None = None, run: Runner | None = None):
    """``reductions.search`` computed block by block: same arguments, same ``Found``.

    ``run(blocks, Q, R, groups, args) -> [Reductions per block]`` reduces the blocks (default: here,
    one after the other; ``RaySimilarity`` runs them as Ray tasks)."""
    a, g = search_args(metric, k=k, col_k=col_k, groups=groups, n_groups=n_groups, stats=stats,
                       exclude_self=exclude_self, device=device)
    m, n = int(queries.shape[0]), int(database.shape[0])
    if exclude_self and m != n:
        raise InputError(f"exclude_self needs the same set on both sides; got {m} queries and {n} database rows")
    blocks = plan_blocks(m, n, query_shards, database_shards)
    parts = (run or run_local)(blocks, queries, database, g, a)
    return to_found(merge_blocks(blocks, parts, a, m, n), a)
