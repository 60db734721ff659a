"""fprt.runtime.similarity — one-pass similarity reductions between queries Q (M x D) and a database R (N x D).

The M x N score matrix is never materialised: it is computed tile by tile (GEMM through BLAS / cuBLAS)
and every reduction is folded in while the tile is in cache, by the C++ extension
(``fprt._similarity_cpu``) or the CUDA extension (``fprt._similarity_cuda``), with a pure-PyTorch
fallback giving identical results (used with one warning when no extension can be loaded or built).

API (stable; the rest of fprt codes against it)
-----------------------------------------------
``topk(Q, R, k, metric="cosine", *, device=None) -> (values, indices)``
    For each query its k closest database rows, closest first: M x k values and int64 indices.

``reduce(Q, R, *, metric="cosine", row_k=0, col_k=0, groups=None, n_groups=None, stats=False,
         tile=None, device=None, backend="auto") -> Reductions``
    Any combination, in one pass:
    - ``row_k``: row top-k (``row_values`` / ``row_indices``, M x row_k: database indices);
    - ``col_k``: column top-k (``col_values`` / ``col_indices``, N x col_k: for each database row its
      col_k closest queries, query indices) - "how close did any generated image come to this real one";
    - ``groups``: a label in [0, G) per database row (G = ``n_groups`` or max label + 1):
      ``group_best`` / ``group_arg`` (M x G): per query its closest score in each group and the database
      row reaching it (an empty group gives -inf similarity / +inf distance and index -1);
    - ``stats``: running moments of every score: ``row_stats`` (per query), ``col_stats`` (per database
      row), ``global_stats`` (all M x N scores): count, mean, m2 (sum of squared deviations), min, max;
      ``.var`` / ``.std`` are the population (ddof=0) variance / std, e.g. for mu + alpha * sigma rules.

``nearest_centroid(Q, C, metric="cosine") -> (values, indices)``
    The closest of G centroids per query (1-D arrays of length M): ``topk`` with k = 1.

``Reductions.merge_query_shards(parts, offsets=None, col_k=None)``,
``Reductions.merge_database_shards(parts, offsets=None, row_k=None)``
    Exact merges of results computed on shards (Ray): query shards (consecutive query ranges against the
    whole database: rows and groups concatenate, column top-k and column/global statistics merge) and
    database shards (consecutive database ranges against all queries, indices local to each shard: row
    top-k and group best merge with global indices, columns concatenate, row/global statistics merge).
    ``offsets`` default to the cumulative shard sizes. Top-k lists merge to exactly the one-pass result;
    statistics to float64 rounding (relative ~1e-12). Merges return NumPy arrays.

``extension_status() -> list[(device, status, detail)]``
    What ``fprt checks`` prints: device "CPU"/"CUDA", status "ok"/"missing"/"error"/"info".

Metrics and values
------------------
``metric``: "cosine" (inputs normalised inside, by their exact float64 norms; zero rows are an error),
"ip" (inner product) or "l2" (values are Euclidean distances, NOT squared). ``Reductions.larger_is_closer``
says the direction: True for cosine / ip (similarities), False for l2 (distances).

Exactness and ties
------------------
Candidates come from the float32 GEMM (expanded form for L2: |q|^2 + |r|^2 - 2 q.r, clamped at 0); the
survivors are re-ranked exactly in float64 (L2 unexpanded) and a certificate based on the GEMM's rigorous
error bound proves that nothing outside the candidates can enter; when it cannot, that row / column /
group is recomputed exactly over its whole range. So every top-k, group best and tie is the exact result
for the float64 scores rounded to float32, ordered by value with ties to the LOWER index, identical across
tile sizes, thread counts, shards, the extension and the fallback. The bound covers the GPU's tensor cores
(truncating accumulation) and float32 underflow: rows of tiny magnitude (~1e-19 and below, cosine included)
stay exact - their products underflow, so they go through the exact recheck (slower, never wrong). Values are float32. Statistics are
accumulated in float64 (per-tile two-pass moments, Chan-merged) from the float32 GEMM scores, so across
tile sizes, shards and backends they agree to the float32 rounding of the scores (~1e-7 of the scores'
scale; MKL rounds a score's last bit differently for different tile shapes), and against float64 brute
force likewise; for L2 the expanded form's error (up to sqrt(delta), see cpp_ext/README.md) shows in the
minima of near-duplicate distances.

Inputs and outputs
------------------
NumPy inputs are wrapped with ``torch.from_numpy`` (zero-copy for C-contiguous float32) and results come
back as NumPy arrays; torch inputs give torch tensors on Q's device. float64 inputs are rounded to float32;
float16 / bfloat16 are used as such on the GPU (tensor cores, fp32 accumulate; exact keys from the 16-bit
values) and widened exactly to float32 on the CPU. ``device`` picks where to compute ("cpu" / "cuda");
default: Q's device. On the GPU a database in host memory is streamed to the device in chunks when it does
not fit. NaN/Inf, mismatched dimensions, empty inputs, bad k or groups raise ``fprt.errors.InputError``
(a ``ValueError``).
"""

from __future__ import annotations

import operator
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fprt.errors import InputError, MissingDependencyError

METRICS = {"cosine": 0, "ip": 1, "l2": 2}
_ALIASES = {"cos": "cosine", "inner_product": "ip", "dot": "ip", "euclidean": "l2"}
PAD = 4  # spare candidates per row / column list (more: fewer exact rechecks on near-ties, more re-rank work)
GROUP_PAD = 3  # spare candidates per (row, group) list
_NO_INDEX = 2**63 - 1

__all__ = [
    "METRICS",
    "Moments",
    "Reductions",
    "extension_status",
    "merge_database_shards",
    "merge_query_shards",
    "nearest_centroid",
    "reduce",
    "topk",
]


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Moments:
    """Running moments of scores: arrays (per row / per column) or 0-d arrays (global)."""

    count: Any
    mean: Any
    m2: Any
    min: Any
    max: Any

    @property
    def var(self):
        """Population variance (ddof=0)."""
        return self.m2 / self.count

    @property
    def std(self):
        """Population standard deviation (ddof=0)."""
        return (self.m2 / self.count) ** 0.5

    @classmethod
    def from_table(cls, table, scalar: bool = False) -> Moments:
        """From an (n, 5) table [count, mean, m2, min, max] (NumPy or torch float64)."""
        if scalar:
            table = table[0]
            return cls(table[0], table[1], table[2], table[3], table[4])
        return cls(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4])

    def numpy(self) -> Moments:
        return Moments(*(np.asarray(_to_numpy(x), dtype=np.float64) for x in (self.count, self.mean, self.m2, self.min, self.max)))

    @staticmethod
    def merge(a: Moments, b: Moments) -> Moments:
        """Elementwise merge of two sets of moments over disjoint scores (Chan et al.), NumPy float64."""
        a, b = a.numpy(), b.numpy()
        n = a.count + b.count
        safe = np.where(n > 0, n, 1.0)
        d = b.mean - a.mean
        with np.errstate(invalid="ignore"):
            mean = np.where(b.count == 0, a.mean, np.where(a.count == 0, b.mean, a.mean + d * (b.count / safe)))
            m2 = np.where(
                b.count == 0, a.m2, np.where(a.count == 0, b.m2, a.m2 + b.m2 + d * d * (a.count * b.count / safe))
            )
        return Moments(n, mean, m2, np.minimum(a.min, b.min), np.maximum(a.max, b.max))

    @staticmethod
    def concat(parts: Sequence[Moments]) -> Moments:
        parts = [p.numpy() for p in parts]
        return Moments(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("count", "mean", "m2", "min", "max")))


@dataclass
class Reductions:
    """Everything one ``reduce`` call computed; fields not asked for are None. See the module docstring."""

    metric: str
    larger_is_closer: bool
    n_queries: int
    n_database: int
    row_values: Any = None
    row_indices: Any = None
    col_values: Any = None
    col_indices: Any = None
    group_best: Any = None
    group_arg: Any = None
    row_stats: Moments | None = None
    col_stats: Moments | None = None
    global_stats: Moments | None = None
    rechecks: dict = field(default_factory=dict)  # lists recomputed exactly because their certificate failed
    backend: str = ""

    @classmethod
    def merge_query_shards(cls, parts: Sequence[Reductions], offsets: Sequence[int] | None = None,
                           col_k: int | None = None) -> Reductions:
        return merge_query_shards(parts, offsets, col_k)

    @classmethod
    def merge_database_shards(cls, parts: Sequence[Reductions], offsets: Sequence[int] | None = None,
                              row_k: int | None = None) -> Reductions:
        return merge_database_shards(parts, offsets, row_k)


# ---------------------------------------------------------------------------------------------
# Public functions


def topk(Q, R, k: int, metric: str = "cosine", *, device=None):
    """For each query its k closest database rows: (values M x k, indices M x k), closest first."""
    k = _as_int(k, "k")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    res = reduce(Q, R, metric=metric, row_k=k, device=device)
    return res.row_values, res.row_indices


def nearest_centroid(Q, C, metric: str = "cosine", *, device=None):
    """The closest centroid of C (G x D) for each query: (values, indices), 1-D arrays of length M."""
    values, indices = topk(Q, C, 1, metric, device=device)
    return values[:, 0], indices[:, 0]


def reduce(Q, R, *, metric: str = "cosine", row_k: int = 0, col_k: int = 0, groups=None, n_groups: int | None = None,
           stats: bool = False, tile=None, device=None, backend: str = "auto") -> Reductions:
    """One pass over the Q x R scores computing the reductions asked for (see the module docstring).

    ``tile``: (queries, database rows) per tile, or one int for both (default: tuned per device).
    ``backend``: "auto" (extension, else fallback with a warning), "extension" (error if unavailable)
    or "torch" (the pure-PyTorch implementation)."""
    import torch

    name = _metric_name(metric)
    m = METRICS[name]
    q, r, as_numpy, out_device = _prepare(Q, R, device)
    M, N = q.shape[0], r.shape[0]
    row_k, col_k = _as_int(row_k, "row_k"), _as_int(col_k, "col_k")
    if not 0 <= row_k <= N:
        raise InputError(f"row_k={row_k} is out of range: R has {N} rows (row_k must be in [0, {N}])")
    if not 0 <= col_k <= M:
        raise InputError(f"col_k={col_k} is out of range: Q has {M} rows (col_k must be in [0, {M}])")
    g_tensor, G = _prepare_groups(groups, n_groups, N)
    if not (row_k or col_k or G or stats):
        raise InputError("nothing to compute: ask for row_k, col_k, groups or stats")
    tm, tn = _tile(tile)
    impl, backend_name = _implementation(q.device.type, backend)
    if backend_name != "extension-cpu":  # the CPU extension checks these in its norm pass, at no extra cost
        _validate_values(q, "Q", name)
        _validate_values(r, "R", name)
        _validate_magnitude(q, r, name)
    if backend_name.startswith("torch") and r.device != q.device:
        r = r.to(q.device)
    if backend_name.startswith("torch") or q.device.type == "cpu":
        q, r = _cpu_dtype(q), _cpu_dtype(r)
    groups_arg = g_tensor if G else torch.empty(0, dtype=torch.long)
    try:
        out = impl(q, r, m, row_k, col_k, groups_arg, G, bool(stats), tm, tn, PAD, GROUP_PAD)
    except RuntimeError as exc:
        marker = "fprt-input-error: "
        if marker in str(exc):
            raise InputError(str(exc).split(marker, 1)[1].splitlines()[0]) from None
        raise
    row_v, row_i, col_v, col_i, grp_v, grp_i, row_mom, col_mom, glob, info = out

    def conv(t):
        return _to_numpy(t) if as_numpy else t.to(out_device)

    info = [int(x) for x in info.tolist()]
    return Reductions(
        metric=name,
        larger_is_closer=name != "l2",
        n_queries=M,
        n_database=N,
        row_values=conv(row_v) if row_k else None,
        row_indices=conv(row_i) if row_k else None,
        col_values=conv(col_v) if col_k else None,
        col_indices=conv(col_i) if col_k else None,
        group_best=conv(grp_v) if G else None,
        group_arg=conv(grp_i) if G else None,
        row_stats=Moments.from_table(conv(row_mom)) if stats else None,
        col_stats=Moments.from_table(conv(col_mom)) if stats else None,
        global_stats=Moments.from_table(conv(glob), scalar=True) if stats else None,
        rechecks={"rows": info[0], "cols": info[1], "group_cells": info[2]},
        backend=backend_name,
    )


def extension_status() -> list[tuple[str, str, str]]:
    """(device, status, detail) of the compiled extensions, for ``fprt checks``; builds nothing."""
    from fprt.runtime import extension_loader

    out = []
    status, detail = extension_loader.status("cpu")
    out.append(("CPU", status, detail))
    status, detail = extension_loader.status("cuda")
    try:
        import torch

        gpu = torch.cuda.is_available()
    except Exception:
        gpu = False
    if not gpu and status == "ok":
        status, detail = "info", f"{detail}; no GPU visible, so not used here"
    out.append(("CUDA", status, detail))
    return out


# ---------------------------------------------------------------------------------------------
# Merges (exact; NumPy)


def _to_numpy(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _check_same(parts, what):
    if not parts:
        raise InputError("no parts to merge")
    metrics = {p.metric for p in parts}
    if len(metrics) != 1:
        raise InputError(f"cannot merge results of different metrics: {sorted(metrics)}")
    sizes = {getattr(p, what) for p in parts}
    if len(sizes) != 1:
        raise InputError(f"cannot merge: the parts disagree on {what} ({sorted(sizes)})")


def _offsets(parts, offsets, size_attr):
    if offsets is None:
        return np.cumsum([0] + [getattr(p, size_attr) for p in parts[:-1]]).tolist()
    if len(offsets) != len(parts):
        raise InputError(f"{len(offsets)} offsets given for {len(parts)} parts")
    return [int(o) for o in offsets]


def _merge_topk(values: list, indices: list, k: int, larger_is_closer: bool):
    v = np.concatenate([_to_numpy(x) for x in values], axis=1)
    i = np.concatenate([_to_numpy(x) for x in indices], axis=1)
    if k > v.shape[1]:
        raise InputError(f"cannot merge to k={k}: the parts hold only {v.shape[1]} candidates per row")
    close = v if larger_is_closer else -v
    order = np.lexsort((i, -close), axis=-1)[:, :k]
    return np.take_along_axis(v, order, 1), np.take_along_axis(i, order, 1)


def _merge_group_best(values: list, args: list, larger_is_closer: bool):
    v = np.stack([_to_numpy(x) for x in values])
    a = np.stack([_to_numpy(x) for x in args])
    close = np.where(a >= 0, v if larger_is_closer else -v, -np.inf)
    tie = np.where(a >= 0, a, np.iinfo(np.int64).max)
    best = np.lexsort((tie, -close), axis=0)[0]
    return np.take_along_axis(v, best[None], 0)[0], np.take_along_axis(a, best[None], 0)[0]


def _merge_global(parts):
    out = None
    for p in parts:
        out = p.global_stats.numpy() if out is None else Moments.merge(out, p.global_stats)
    return out


def merge_query_shards(parts: Sequence[Reductions], offsets: Sequence[int] | None = None,
                       col_k: int | None = None) -> Reductions:
    """Merge results of consecutive query shards against the same database (see the module docstring).

    ``offsets``: the global index of each part's first query (default: cumulative sizes); ``col_k``:
    the merged column top-k (default: the widest part's)."""
    parts = list(parts)
    _check_same(parts, "n_database")
    offs = _offsets(parts, offsets, "n_queries")
    first = parts[0]
    out = Reductions(first.metric, first.larger_is_closer, sum(p.n_queries for p in parts), first.n_database,
                     backend="merged")
    if first.row_values is not None:
        out.row_values = np.concatenate([_to_numpy(p.row_values) for p in parts])
        out.row_indices = np.concatenate([_to_numpy(p.row_indices) for p in parts])
    if first.group_best is not None:
        out.group_best = np.concatenate([_to_numpy(p.group_best) for p in parts])
        out.group_arg = np.concatenate([_to_numpy(p.group_arg) for p in parts])
    if first.col_values is not None:
        k = col_k if col_k is not None else max(_to_numpy(p.col_values).shape[1] for p in parts)
        out.col_values, out.col_indices = _merge_topk(
            [p.col_values for p in parts], [_to_numpy(p.col_indices) + o for p, o in zip(parts, offs)], k,
            first.larger_is_closer)
    if first.row_stats is not None:
        out.row_stats = Moments.concat([p.row_stats for p in parts])
        col = parts[0].col_stats.numpy()
        for p in parts[1:]:
            col = Moments.merge(col, p.col_stats)
        out.col_stats = col
        out.global_stats = _merge_global(parts)
    out.rechecks = {key: sum(p.rechecks.get(key, 0) for p in parts) for key in ("rows", "cols", "group_cells")}
    return out


def merge_database_shards(parts: Sequence[Reductions], offsets: Sequence[int] | None = None,
                          row_k: int | None = None) -> Reductions:
    """Merge results of consecutive database shards against the same queries (see the module docstring).

    ``offsets``: the global index of each part's first database row (default: cumulative sizes);
    ``row_k``: the merged row top-k (default: the widest part's). Group labels must be global (the same
    G in every part)."""
    parts = list(parts)
    _check_same(parts, "n_queries")
    offs = _offsets(parts, offsets, "n_database")
    first = parts[0]
    out = Reductions(first.metric, first.larger_is_closer, first.n_queries, sum(p.n_database for p in parts),
                     backend="merged")
    if first.row_values is not None:
        k = row_k if row_k is not None else max(_to_numpy(p.row_values).shape[1] for p in parts)
        out.row_values, out.row_indices = _merge_topk(
            [p.row_values for p in parts], [_to_numpy(p.row_indices) + o for p, o in zip(parts, offs)], k,
            first.larger_is_closer)
    if first.group_best is not None:
        widths = {_to_numpy(p.group_best).shape[1] for p in parts}
        if len(widths) != 1:
            raise InputError(f"cannot merge group results with different numbers of groups {sorted(widths)}: "
                             "pass the same n_groups to every shard")
        args = [np.where(_to_numpy(p.group_arg) >= 0, _to_numpy(p.group_arg) + o, -1) for p, o in zip(parts, offs)]
        out.group_best, out.group_arg = _merge_group_best([p.group_best for p in parts], args, first.larger_is_closer)
    if first.col_values is not None:
        out.col_values = np.concatenate([_to_numpy(p.col_values) for p in parts])
        out.col_indices = np.concatenate([_to_numpy(p.col_indices) for p in parts])
    if first.row_stats is not None:
        row = parts[0].row_stats.numpy()
        for p in parts[1:]:
            row = Moments.merge(row, p.row_stats)
        out.row_stats = row
        out.col_stats = Moments.concat([p.col_stats for p in parts])
        out.global_stats = _merge_global(parts)
    out.rechecks = {key: sum(p.rechecks.get(key, 0) for p in parts) for key in ("rows", "cols", "group_cells")}
    return out


# ---------------------------------------------------------------------------------------------
# Input handling


def _metric_name(metric) -> str:
    name = str(metric).lower()
    name = _ALIASES.get(name, name)
    if name not in METRICS:
        raise InputError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    return name


def _as_int(value, what: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InputError(f"{what} must be an integer, got {value!r}") from None


def _as_tensor(x, what: str):
    import torch

    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        a = np.asarray(x)
        if a.dtype.kind != "f":
            raise InputError(f"{what} must hold floating-point values, got dtype {a.dtype}")
        if a.dtype not in (np.float16, np.float32):
            a = a.astype(np.float32)
        t = torch.from_numpy(np.ascontiguousarray(a))
    if not t.is_floating_point():
        raise InputError(f"{what} must hold floating-point values, got dtype {t.dtype}")
    if t.ndim != 2:
        raise InputError(f"{what} must be 2-D (rows x dimensions), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise InputError(f"{what} is empty (0 rows)")
    if t.shape[1] == 0:
        raise InputError(f"{what} has 0 dimensions")
    return t


def _prepare(Q, R, device):
    import torch

    as_numpy = not isinstance(Q, torch.Tensor)
    q, r = _as_tensor(Q, "Q"), _as_tensor(R, "R")
    if q.shape[1] != r.shape[1]:
        raise InputError(f"Q has {q.shape[1]} dimensions but R has {r.shape[1]}: they must match")
    out_device = q.device
    dev = torch.device(device) if device is not None else q.device
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MissingDependencyError("device='cuda' was asked for but torch sees no CUDA GPU")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cuda":
        q = q.to(dev)
        if r.device.type == "cuda":
            r = r.to(dev)
        elif not os.environ.get("FPRT_CUDA_CHUNK_ROWS") and r.numel() * 4 < 0.5 * torch.cuda.mem_get_info(dev)[0]:
            r = r.to(dev)  # fits: move it; else the extension streams it from host memory (FPRT_CUDA_CHUNK_ROWS
            # forces streaming in chunks of that many rows: for tests)
        dtypes = {q.dtype, r.dtype}
        target = q.dtype if len(dtypes) == 1 and q.dtype in (torch.float16, torch.bfloat16) else torch.float32
        q, r = q.to(target), r.to(target)
    else:
        q, r = q.to("cpu"), r.to("cpu")
    return q.contiguous(), r.contiguous(), as_numpy, out_device


def _cpu_dtype(t):
    import torch

    return t if t.dtype == torch.float32 else t.float().contiguous()


def _validate_values(t, what: str, metric: str) -> None:
    """NaN/Inf anywhere, or (cosine) rows of zero norm: a clear error naming the first bad row."""
    import torch

    step = 8192
    for s in range(0, t.shape[0], step):
        chunk = t[s : s + step]
        finite = torch.isfinite(chunk).all(dim=1)
        if not bool(finite.all()):
            bad = s + int((~finite).nonzero()[0])
            raise InputError(f"{what} row {bad} contains NaN or Inf")
        if metric == "cosine":
            zero = chunk.abs().amax(dim=1) < 1e-30
            if bool(zero.any()):
                bad = s + int(zero.nonzero()[0])
                raise InputError(f"{what} row {bad} is zero (or below 1e-30): cosine similarity is undefined for it")


def _validate_magnitude(q, r, metric: str) -> None:
    """The float32 GEMM must stay far from overflow (|x| up to ~1e15 is fine for D in the thousands)."""
    aq, ar = _max_abs(q), _max_abs(r)
    d = q.shape[1]
    bound = aq * ar * d if metric != "l2" else (max(aq, ar) ** 2) * d * 4
    if bound > 1e36:
        raise InputError(f"values too large for float32 arithmetic (max |Q| = {aq:.3g}, max |R| = {ar:.3g}, D = {d})")


def _max_abs(t) -> float:
    import torch

    lo, hi = torch.aminmax(t)
    return max(abs(float(lo)), abs(float(hi)))


def _prepare_groups(groups, n_groups, N):
    import torch

    if groups is None:
        if n_groups:
            raise InputError("n_groups given without groups")
        return None, 0
    g = groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != N:
        raise InputError(f"groups must be 1-D with one label per database row ({N}), got shape {g.shape}")
    if g.dtype.kind not in "iu":
        if g.dtype.kind == "f" and np.all(np.isfinite(g)) and np.all(g == np.round(g)):
            g = g.astype(np.int64)
        else:
            raise InputError(f"groups must hold integer labels 0..G-1, got dtype {g.dtype}")
    g = g.astype(np.int64)
    if g.min() < 0:
        raise InputError(f"groups must be >= 0, got {int(g.min())} (map labels to 0..G-1 first)")
    G = int(g.max()) + 1
    if n_groups is not None:
        n_groups = _as_int(n_groups, "n_groups")
        if n_groups < G:
            raise InputError(f"n_groups={n_groups} but groups holds label {G - 1}")
        G = n_groups
    return torch.from_numpy(np.ascontiguousarray(g)), G


def _tile(tile) -> tuple[int, int]:
    if tile is None:
        return 0, 0
    if isinstance(tile, (tuple, list)):
        if len(tile) != 2:
            raise InputError(f"tile must be an int or (queries, database rows), got {tile!r}")
        tm, tn = (_as_int(t, "tile") for t in tile)
    else:
        tm = tn = _as_int(tile, "tile")
    if tm < 1 or tn < 1:
        raise InputError(f"tile sizes must be positive, got {tile!r}")
    return tm, tn


# ---------------------------------------------------------------------------------------------
# Backend choice

_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


def _implementation(device_type: str, backend: str):
    from fprt.runtime import extension_loader
    from fprt.runtime.similarity_fallback import reduce_torch

    if backend not in ("auto", "extension", "torch"):
        raise InputError(f"backend must be 'auto', 'extension' or 'torch', got {backend!r}")
    if backend == "torch":
        return reduce_torch, f"torch-{device_type}"
    loaded = extension_loader.load(device_type)
    if loaded.module is not None:
        return loaded.module.reduce, f"extension-{device_type}"
    if backend == "extension":
        raise MissingDependencyError(f"the {device_type.upper()} similarity extension is unavailable: {loaded.detail}")
    with _WARN_LOCK:
        if device_type not in _WARNED:
            _WARNED.add(device_type)
            warnings.warn(
                f"fprt: the {device_type.upper()} similarity extension is unavailable ({loaded.detail}); "
                "using the pure-PyTorch fallback (same results, slower)",
                RuntimeWarning,
                stacklevel=3,
            )
    return reduce_torch, f"torch-{device_type}"
