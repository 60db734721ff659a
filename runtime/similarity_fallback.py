"""Pure-PyTorch implementation of the similarity reductions (any device), identical in results to the
C++/CUDA extension: the same approx-candidates / exact-re-rank / certificate / band-pass scheme, and
exact keys computed in float64 in the extension's fixed order (four interleaved partial sums over
d mod 4, combined as (s0 + s1) + (s2 + s3); see cpp_ext/include/fprt_sim/epilogue.h), so the exact keys,
and hence every top-k, group best and tie, are the same bits. Statistics agree to float64 rounding.

Used by ``fprt.runtime.similarity`` when the extension cannot be built or loaded (one warning), and by
the tests as the extension's reference. Returns the extension's output list (see ``reduce_torch``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

COSINE, INNER_PRODUCT, L2 = 0, 1, 2
NO_INDEX = 2**63 - 1  # an empty slot of a candidate list
U = 2.0**-24
_PAIR_CHUNK = 16384


# ---------------------------------------------------------------------------------------------
# Exact keys (float64, fixed order) and rank values.


def _fixed_order_sum(terms: torch.Tensor) -> torch.Tensor:
    """Sum (P, D) float64 terms like the extension: lanes d mod 4 accumulated in order, then (s0+s1)+(s2+s3)."""
    p, d = terms.shape
    d4 = -(-d // 4) * 4
    if d4 != d:
        terms = torch.nn.functional.pad(terms, (0, d4 - d))
    terms = terms.view(p, d4 // 4, 4)
    acc = torch.zeros(p, 4, dtype=torch.float64, device=terms.device)
    for s in range(d4 // 4):
        acc = acc + terms[:, s, :]
    return (acc[:, 0] + acc[:, 1]) + (acc[:, 2] + acc[:, 3])


def exact_self(x: torch.Tensor) -> torch.Tensor:
    """Exact |x_i|^2 per row (float64)."""
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], _PAIR_CHUNK):
        xd = x[s : s + _PAIR_CHUNK].double()
        out[s : s + _PAIR_CHUNK] = _fixed_order_sum(xd * xd)
    return out


def exact_keys(metric: int, a: torch.Tensor, b: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor,
               a_norm: torch.Tensor, b_norm: torch.Tensor) -> torch.Tensor:
    """Exact keys (larger is closer) of the pairs (a[ia[t]], b[ib[t]]), float64."""
    out = torch.empty(ia.shape[0], dtype=torch.float64, device=a.device)
    for s in range(0, ia.shape[0], _PAIR_CHUNK):
        xa = a[ia[s : s + _PAIR_CHUNK]].double()
        xb = b[ib[s : s + _PAIR_CHUNK]].double()
        if metric == L2:
            e = xa - xb
            out[s : s + _PAIR_CHUNK] = -_fixed_order_sum(e * e)
        else:
            dot = _fixed_order_sum(xa * xb)
            if metric == COSINE:
                dot = dot / (a_norm[ia[s : s + _PAIR_CHUNK]] * b_norm[ib[s : s + _PAIR_CHUNK]])
            out[s : s + _PAIR_CHUNK] = dot
    return out


def exact_sqrt(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float64 square root (as C++ sqrt and CUDA's IEEE sqrt). torch.sqrt on the CPU is
    not (SLEEF: ~1% of results 1 ulp off), NumPy's is."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sqrt(x.numpy()))
    return torch.sqrt(x)


def rank_value(metric: int, key: torch.Tensor) -> torch.Tensor:
    """float32 rank value (larger is closer) of float64 keys; L2: minus the distance."""
    if metric == L2:
        return -exact_sqrt(torch.clamp(-key, min=0.0)).float()
    return key.float()


def output_value(metric: int, rv: torch.Tensor) -> torch.Tensor:
    return -rv if metric == L2 else rv


def delta_factor(dim: int, u_in: float, truncating: bool = False) -> float:
    """fprt_sim::delta_factor: round-to-nearest accumulation (CPU), or truncating tensor-core blocks (GPU)."""
    du = (dim + 16) * 4.0 * U if truncating else dim * U
    return 1.03 * (du / (1.0 - du) + 8.0 * U + 2.0 * u_in)


def underflow_bound(metric: int, dim: int, a_norm, b_min: float):
    """fprt_sim::underflow_bound: products / partial sums below 2^-126 may flush to zero (absolute error)."""
    t = (dim + 16) * 2.0**-126
    if metric == COSINE:
        return t / (a_norm * b_min) * 1.01
    if metric == L2:
        return 2.0 * t + 4.0 * 2.0**-126
    return t


def _widen_up(x: torch.Tensor) -> torch.Tensor:
    return x + x.abs() * 1e-12 + 1e-300


def band_threshold(metric: int, kth_key: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    rel = 2.0**-20
    if metric == L2:
        d = exact_sqrt(torch.clamp(-kth_key, min=0.0))
        d_hi = d * (1.0 + rel) + 1e-30
        margin = d_hi * d_hi - d * d
    else:
        margin = kth_key.abs() * rel + 1e-37
    return kth_key - margin - _widen_up(delta)


def gemm_input_rounding(device: torch.device) -> float:
    """Input rounding of float32 matmuls as torch is configured (TF32 / BF16 modes), 0 for true fp32."""
    if device.type == "cuda":
        return 2.0**-11 if torch.backends.cuda.matmul.allow_tf32 else 0.0
    try:
        prec = torch.backends.mkldnn.matmul.fp32_precision
    except AttributeError:
        return 0.0
    return {"bf16": 2.0**-8, "tf32": 2.0**-11}.get(prec, 0.0)


# ---------------------------------------------------------------------------------------------
# Sorting helpers: order by (rank value desc, index asc).


def _sort_ranked(rv: torch.Tensor, idx: torch.Tensor, *extra: torch.Tensor):
    """Sort each row by (rv desc, idx asc); returns the permuted (rv, idx, *extra)."""
    o1 = torch.sort(idx, dim=1, stable=True).indices
    rv1 = torch.gather(rv, 1, o1)
    o2 = torch.sort(rv1, dim=1, descending=True, stable=True).indices
    order = torch.gather(o1, 1, o2)
    return tuple(torch.gather(t, 1, order) for t in (rv, idx, *extra))


def _merge_candidates(vals: torch.Tensor, idx: torch.Tensor, new_vals: torch.Tensor, new_idx: torch.Tensor, cap: int):
    """Keep the cap largest approx values of each row of [vals | new_vals] (sorted, descending)."""
    v = torch.cat([vals, new_vals], dim=1)
    i = torch.cat([idx, new_idx], dim=1)
    top = torch.topk(v, cap, dim=1)
    return top.values, torch.gather(i, 1, top.indices)


# ---------------------------------------------------------------------------------------------
# Moments (count, mean, M2, min, max) as a (rows, 5) float64 tensor.


def _tile_moments(x: torch.Tensor, dim: int) -> torch.Tensor:
    xd = x.double()
    n = x.shape[dim]
    mean = xd.sum(dim) / n
    m2 = ((xd - mean.unsqueeze(dim)) ** 2).sum(dim)
    return torch.stack([torch.full_like(mean, n), mean, m2, x.amin(dim).double(), x.amax(dim).double()], dim=1)


def merge_moments(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Chan et al.'s pairwise merge, elementwise over rows (empty rows have count 0)."""
    na, nb = a[:, 0], b[:, 0]
    n = na + nb
    safe = torch.where(n > 0, n, torch.ones_like(n))
    d = b[:, 1] - a[:, 1]
    mean = torch.where(nb == 0, a[:, 1], torch.where(na == 0, b[:, 1], a[:, 1] + d * (nb / safe)))
    m2 = torch.where(nb == 0, a[:, 2], torch.where(na == 0, b[:, 2], a[:, 2] + b[:, 2] + d * d * (na * nb / safe)))
    return torch.stack([n, mean, m2, torch.minimum(a[:, 3], b[:, 3]), torch.maximum(a[:, 4], b[:, 4])], dim=1)


def combine_moments(parts: torch.Tensor) -> torch.Tensor:
    """All rows of (P, 5) combined into one (1, 5): the two-pass parallel formula in float64."""
    n = parts[:, 0].sum()
    if n == 0:
        return empty_moments(1, parts.device)
    mean = (parts[:, 0] * parts[:, 1]).sum() / n
    m2 = parts[:, 2].sum() + (parts[:, 0] * (parts[:, 1] - mean) ** 2).sum()
    return torch.stack([n, mean, m2, parts[:, 3].min(), parts[:, 4].max()]).view(1, 5)


def empty_moments(rows: int, device) -> torch.Tensor:
    out = torch.zeros(rows, 5, dtype=torch.float64, device=device)
    out[:, 3] = math.inf
    out[:, 4] = -math.inf
    return out


# ---------------------------------------------------------------------------------------------
# The passes.


class _Side:
    """One side of the product: rows, exact norms, and the per-row scaling of approx keys."""

    def __init__(self, x: torch.Tensor, metric: int):
        self.x = x
        self.sq = exact_self(x)
        self.norm = exact_sqrt(self.sq)
        self.aux = (1.0 / self.norm).float() if metric == COSINE else self.sq.float()
        self.max_norm = float(self.norm.max())
        self.min_norm = float(self.norm.min())

    def delta(self, metric: int, factor: float, rows: torch.Tensor, other: _Side) -> torch.Tensor:
        """fprt_sim::error_bound of rows `rows` of this side against any row of `other`."""
        dim = self.x.shape[1]
        norm = self.norm[rows]
        if metric == COSINE:
            scaled = torch.full(rows.shape, factor, dtype=torch.float64, device=self.x.device)
        elif metric == INNER_PRODUCT:
            scaled = factor * norm * other.max_norm
        else:
            scaled = factor * (self.sq[rows] + other.max_norm**2)
        return scaled + underflow_bound(metric, dim, norm, other.min_norm)


def _approx(metric: int, a: torch.Tensor, a_aux: torch.Tensor, b: torch.Tensor, b_aux: torch.Tensor) -> torch.Tensor:
    """Approx keys of a tile: float32 GEMM (fp32 accumulate), scaled / expanded as in the extension."""
    c = a.float() @ b.float().T
    if metric == COSINE:
        c = (c * a_aux[:, None]) * b_aux[None, :]
    elif metric == L2:
        c = torch.clamp(2.0 * c - (a_aux[:, None] + b_aux[None, :]), max=0.0)
    return c


def _finalize(metric: int, a: _Side, b: _Side, cand_v: torch.Tensor, cand_i: torch.Tensor, k: int, factor: float,
              rows: torch.Tensor):
    """Exact re-rank + certificate of candidate lists (one per entry of `rows`, a-side row index).

    Returns (out_v, out_i, failed mask, band threshold); out_* are valid where not failed. Empty lists
    (possible for groups only) give -inf rank value and index -1."""
    cap = cand_i.shape[1]
    valid = cand_i != NO_INDEX
    ia = rows[:, None].expand(-1, cap)[valid]
    ib = cand_i[valid]
    keys = torch.full(cand_i.shape, -math.inf, dtype=torch.float64, device=cand_i.device)
    keys[valid] = exact_keys(metric, a.x, b.x, ia, ib, a.norm, b.norm)
    rv = torch.where(valid, rank_value(metric, keys), torch.full_like(keys, -math.inf, dtype=torch.float32))
    rv, idx, keys = _sort_ranked(rv, cand_i, keys)
    delta = a.delta(metric, factor, rows, b)
    full = cand_i[:, cap - 1] != NO_INDEX
    upper = _widen_up(cand_v[:, cap - 1].double() + delta)
    ok = (~full) | (rank_value(metric, upper) < rv[:, k - 1])
    empty = ~valid[:, 0]
    ok = ok | empty
    out_v = output_value(metric, rv[:, :k])
    out_i = torch.where(idx[:, :k] == NO_INDEX, torch.full_like(idx[:, :k], -1), idx[:, :k])
    thr = torch.where(ok, torch.full_like(delta, math.inf), band_threshold(metric, keys[:, k - 1], delta))
    return out_v, out_i, ~ok, thr


def _band(metric: int, a: _Side, rows: torch.Tensor, b: _Side, thr: torch.Tensor, k: int, groups, G: int,
          gthr, tile_m: int, tile_n: int):
    """Exact band pass: for each a-row in `rows`, the exact top-k over the b-rows whose approx key >= thr,
    and per group the exact best over those with approx key >= gthr. Returns rank values / indices."""
    dev = a.x.device
    nf = rows.shape[0]
    kk = max(k, 1)
    out_rv = torch.full((nf, kk), -math.inf, dtype=torch.float32, device=dev)
    out_id = torch.full((nf, kk), NO_INDEX, dtype=torch.long, device=dev)
    g_rv = torch.full((nf, max(G, 1)), -math.inf, dtype=torch.float32, device=dev)
    g_id = torch.full((nf, max(G, 1)), NO_INDEX, dtype=torch.long, device=dev)
    n_b = b.x.shape[0]
    for f0 in range(0, nf, tile_m):
        fr = rows[f0 : f0 + tile_m]
        for j0 in range(0, n_b, tile_n):
            jr = torch.arange(j0, min(j0 + tile_n, n_b), device=dev)
            c = _approx(metric, a.x[fr], a.aux[fr], b.x[j0 : j0 + tile_n], b.aux[j0 : j0 + tile_n]).double()
            in_row = c >= thr[f0 : f0 + tile_m, None] if k > 0 else torch.zeros_like(c, dtype=torch.bool)
            in_grp = (c >= gthr[f0 : f0 + tile_m][:, groups[jr]]) if G > 0 else torch.zeros_like(in_row)
            need = in_row | in_grp
            if not bool(need.any()):
                continue
            ri, cj = need.nonzero(as_tuple=True)
            rv_t = torch.full(c.shape, -math.inf, dtype=torch.float32, device=dev)
            rv_t[ri, cj] = rank_value(metric, exact_keys(metric, a.x, b.x, fr[ri], jr[cj], a.norm, b.norm))
            ids = jr[None, :].expand(c.shape[0], -1)
            if k > 0:
                v = torch.where(in_row, rv_t, torch.full_like(rv_t, -math.inf))
                i = torch.where(in_row, ids, torch.full_like(ids, NO_INDEX))
                v, i = _sort_ranked(torch.cat([out_rv[f0 : f0 + tile_m], v], 1), torch.cat([out_id[f0 : f0 + tile_m], i], 1))
                out_rv[f0 : f0 + tile_m], out_id[f0 : f0 + tile_m] = v[:, :kk], i[:, :kk]
            for g in range(G):
                sel = in_grp & (groups[jr] == g)[None, :]
                v = torch.where(sel, rv_t, torch.full_like(rv_t, -math.inf))
                i = torch.where(sel, ids, torch.full_like(ids, NO_INDEX))
                v = torch.cat([g_rv[f0 : f0 + tile_m, g : g + 1], v], 1)
                i = torch.cat([g_id[f0 : f0 + tile_m, g : g + 1], i], 1)
                v, i = _sort_ranked(v, i)
                g_rv[f0 : f0 + tile_m, g], g_id[f0 : f0 + tile_m, g] = v[:, 0], i[:, 0]
    return out_rv[:, :k], out_id[:, :k], g_rv[:, :G], g_id[:, :G]


def reduce_torch(Q: torch.Tensor, R: torch.Tensor, metric: int, row_k: int, col_k: int, groups: torch.Tensor | None,
                 n_groups: int, stats: bool, tile_m: int = 0, tile_n: int = 0, pad: int = 8, group_pad: int = 3):
    """Same arguments and outputs as the extension's ``reduce``:
    [row_vals, row_idx, col_vals, col_idx, group_best, group_arg, row_moments (M x 5), col_moments (N x 5),
    global_moments (1 x 5), rechecks (3,) int64 on the CPU]; empty tensors for what was not asked."""
    dev = Q.device
    M, N = Q.shape[0], R.shape[0]
    tm = max(1, min(tile_m or 1024, M))  # clamped to the problem, as fprt_sim/plan.h does
    tn = max(1, min(tile_n or 4096, N))
    G = n_groups
    kr = row_k + pad if row_k else 0
    kc = col_k + pad if col_k else 0
    gp = 1 + group_pad if G else 0
    q, r = _Side(Q, metric), _Side(R, metric)
    factor = delta_factor(Q.shape[1], gemm_input_rounding(dev), truncating=dev.type == "cuda")
    if G:
        groups = groups.to(dev, torch.long)
    ninf = -math.inf

    rv = torch.full((M, kr), ninf, device=dev)
    ri = torch.full((M, kr), NO_INDEX, dtype=torch.long, device=dev)
    cv = torch.full((N, kc), ninf, device=dev)
    ci = torch.full((N, kc), NO_INDEX, dtype=torch.long, device=dev)
    gv = torch.full((M, G, gp), ninf, device=dev)
    gi = torch.full((M, G, gp), NO_INDEX, dtype=torch.long, device=dev)
    row_m = empty_moments(M if stats else 0, dev)
    col_m = empty_moments(N if stats else 0, dev)

    for i0 in range(0, M, tm):
        i1 = min(i0 + tm, M)
        qi = torch.arange(i0, i1, device=dev)
        for j0 in range(0, N, tn):
            j1 = min(j0 + tn, N)
            jr = torch.arange(j0, j1, device=dev)
            c = _approx(metric, Q[i0:i1], q.aux[i0:i1], R[j0:j1], r.aux[j0:j1])
            if kr:
                t = torch.topk(c, min(kr, j1 - j0), dim=1)
                rv[i0:i1], ri[i0:i1] = _merge_candidates(rv[i0:i1], ri[i0:i1], t.values, jr[t.indices], kr)
            if kc:
                t = torch.topk(c.T, min(kc, i1 - i0), dim=1)
                cv[j0:j1], ci[j0:j1] = _merge_candidates(cv[j0:j1], ci[j0:j1], t.values, qi[t.indices], kc)
            for g in range(G):
                cols = (groups[j0:j1] == g).nonzero().flatten()
                if cols.numel() == 0:
                    continue
                t = torch.topk(c[:, cols], min(gp, cols.numel()), dim=1)
                gv[i0:i1, g], gi[i0:i1, g] = _merge_candidates(gv[i0:i1, g], gi[i0:i1, g], t.values,
                                                               jr[cols][t.indices], gp)
            if stats:
                x = torch.sqrt(-c) if metric == L2 else c
                row_m[i0:i1] = merge_moments(row_m[i0:i1], _tile_moments(x, 1))
                col_m[j0:j1] = merge_moments(col_m[j0:j1], _tile_moments(x, 0))

    f32 = dict(dtype=torch.float32, device=dev)
    i64 = dict(dtype=torch.long, device=dev)
    rechecks = torch.zeros(3, dtype=torch.long)
    row_vals, row_idx = torch.empty((M, row_k), **f32), torch.empty((M, row_k), **i64)
    grp_best, grp_arg = torch.empty((M, G), **f32), torch.empty((M, G), **i64)
    all_rows = torch.arange(M, device=dev)
    row_fail = torch.zeros(M, dtype=torch.bool, device=dev)
    row_thr = torch.full((M,), math.inf, dtype=torch.float64, device=dev)
    grp_fail = torch.zeros((M, G), dtype=torch.bool, device=dev)
    grp_thr = torch.full((M, G), math.inf, dtype=torch.float64, device=dev)
    if kr:
        row_vals, row_idx, row_fail, row_thr = _finalize(metric, q, r, rv, ri, row_k, factor, all_rows)
        rechecks[0] = int(row_fail.sum())
    if G:
        flat_rows = all_rows[:, None].expand(M, G).reshape(-1)
        bv, bi, bf, bt = _finalize(metric, q, r, gv.reshape(M * G, gp), gi.reshape(M * G, gp), 1, factor, flat_rows)
        grp_best, grp_arg = bv.view(M, G), bi.view(M, G)
        grp_fail, grp_thr = bf.view(M, G), bt.view(M, G)
        rechecks[2] = int(grp_fail.sum())
    failed = (row_fail | grp_fail.any(1)).nonzero().flatten() if (kr or G) else all_rows[:0]
    if failed.numel():
        b_rv, b_id, b_grv, b_gid = _band(metric, q, failed, r, row_thr[failed], row_k, groups, G, grp_thr[failed], tm, tn)
        if kr:
            sel = row_fail[failed]
            row_vals[failed[sel]] = output_value(metric, b_rv[sel])
            row_idx[failed[sel]] = b_id[sel]
        if G:
            mask = grp_fail[failed]
            grp_best[failed] = torch.where(mask, output_value(metric, b_grv), grp_best[failed])
            grp_arg[failed] = torch.where(mask, b_gid, grp_arg[failed])

    col_vals, col_idx = torch.empty((N, col_k), **f32), torch.empty((N, col_k), **i64)
    if kc:
        all_cols = torch.arange(N, device=dev)
        col_vals, col_idx, col_fail, col_thr = _finalize(metric, r, q, cv, ci, col_k, factor, all_cols)
        failed_c = col_fail.nonzero().flatten()
        rechecks[1] = failed_c.numel()
        if failed_c.numel():
            b_rv, b_id, _, _ = _band(metric, r, failed_c, q, col_thr[failed_c], col_k, None, 0, None, tm, tn)
            col_vals[failed_c] = output_value(metric, b_rv)
            col_idx[failed_c] = b_id

    if stats:
        glob = combine_moments(row_m)
    else:
        glob = empty_moments(0, dev)
    return [row_vals, row_idx, col_vals, col_idx, grp_best, grp_arg, row_m, col_m, glob, rechecks]
