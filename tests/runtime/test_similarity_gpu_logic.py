"""The GPU similarity path's logic, tested on the CPU (issue 16).

The CUDA kernels call the shared header code (fprt_sim/epilogue.h, fprt_sim/plan.h) that the CPU module
exposes here: the error bound, the re-rank + certificate + band pass of the finalize / band kernels
(``topk_from_approx``, fed with an emulated tensor-core GEMM), the warp insertion rule, and the planning
of tiles, kernel shapes and streaming chunks. What only a GPU can show is in test_similarity_cuda.py
(marked ``gpu``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fprt.runtime import extension_loader
from fprt.runtime import similarity as sim
from fprt.runtime import similarity_fallback as fb

from similarity_testkit import METRIC_CODE, clustered_data, exact_rank_values, exact_topk, random_data, stats_atol, to_output

U = 2.0**-24


@pytest.fixture(scope="module")
def ext():
    loaded = extension_loader.load("cpu")
    assert loaded.module is not None, loaded.detail
    return loaded.module


# ---------------------------------------------------------------------------------------------- finding 2
def bf16(x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).bfloat16().float().numpy()


def truncating_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A @ b.T in float32 the way a truncating accumulator does it: products of bf16 values are exact in
    float32; every addition rounds toward zero (the error never cancels)."""
    acc = np.zeros((a.shape[0], b.shape[0]), np.float32)
    for d in range(a.shape[1]):
        prod = np.outer(a[:, d], b[:, d]).astype(np.float32)  # exact: 8-bit x 8-bit significands
        exact = acc.astype(np.float64) + prod.astype(np.float64)  # exact in float64
        rounded = exact.astype(np.float32)
        away = np.abs(rounded.astype(np.float64)) > np.abs(exact)
        acc = np.where(away, np.nextafter(rounded, np.float32(0)), rounded)
    return acc


def planted_near_ties(d=2048, k=10, pad=4, m=3):
    """Non-negative bf16 rows. Every row starts with 1; "tail" entries t (t^2 just below 2^-23 = ulp(1))
    vanish in a truncating accumulator whose partial sum is 1, so every approx key is 1.0 (a tie broken by
    index). The lowest-index rows carry 1,200 tail entries, the later ones all 2,047: the exact top-k is the
    later rows, but the certificate under the round-to-nearest bound (~1.03 D u) believes the first ones."""
    t = 1.40625 * 2.0**-12  # bf16-exact; t * t = 0.989 * 2^-23
    q = np.full((m, d), t, np.float32)
    q[:, 0] = 1.0
    r = np.zeros((k + pad + 2 * k, d), np.float32)
    r[:, 0] = 1.0
    r[: k + pad, 1:1201] = t
    r[k + pad :, 1:] = t
    return bf16(q), bf16(r), k, pad


def test_truncating_tensor_core_accumulation_needs_the_wider_bound(ext):
    q, r, k, pad = planted_near_ties()
    approx = truncating_gemm(q, r)
    rv = exact_rank_values(q, r, "ip")
    keys = ext.exact_keys(torch.from_numpy(q), torch.from_numpy(r), 1, torch.arange(3).repeat_interleave(len(r)),
                          torch.arange(len(r)).repeat(3)).view(3, -1).numpy()
    err = np.abs(approx.astype(np.float64) - keys)
    scale = np.linalg.norm(q.astype(np.float64), axis=1)[:, None] * np.linalg.norm(r.astype(np.float64), axis=1).max()
    d = q.shape[1]
    old = ext.error_bound_factor(d, 0.0, 0) * scale
    new = ext.error_bound_factor(d, 0.0, 1) * scale
    assert (err > old).any(), "the emulated truncating GEMM should exceed the round-to-nearest bound here"
    assert (err <= new).all()

    ref_v, ref_i = exact_topk(rv, k)
    qt, rt, ct = torch.from_numpy(q), torch.from_numpy(r), torch.from_numpy(approx)
    wrong_v, wrong_i, wrong_failed, _ = ext.topk_from_approx(qt, rt, ct, 1, k, pad, 0)
    assert not np.array_equal(wrong_i.numpy(), ref_i)  # the old bound certifies the wrong list
    assert not wrong_failed.any()
    v, i, failed, delta = ext.topk_from_approx(qt, rt, ct, 1, k, pad, 1)
    assert failed.all()  # the wider bound sends every row through the exact band pass ...
    np.testing.assert_array_equal(i.numpy(), ref_i)  # ... which finds the exact answer
    np.testing.assert_array_equal(v.numpy(), to_output(ref_v, "ip"))


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_finalize_logic_on_emulated_bf16_gemm_with_near_ties_is_exact(ext, metric):
    """Random non-negative bf16 features (D = 2048) with near-duplicates planted at the k-th place."""
    rng = np.random.default_rng(3)
    d, k, pad = 2048, 5, 4
    q = rng.random((4, d), dtype=np.float32)
    r = rng.random((60, d), dtype=np.float32)
    for i in range(4):  # rows around the k-th place of each query: copies of one row with 1-ulp changes
        base = r[10 + i].copy()
        for c in range(8):
            r[20 + 8 * i + c] = base
            r[20 + 8 * i + c, c] = np.nextafter(base[c], np.float32(2))
    q, r = bf16(q), bf16(r)
    approx = truncating_gemm(q, r)
    code = METRIC_CODE[metric]
    qn = np.sqrt(np.sum(q.astype(np.float64) ** 2, 1)).astype(np.float32)
    rn = np.sqrt(np.sum(r.astype(np.float64) ** 2, 1)).astype(np.float32)
    if metric == "cosine":
        approx = (approx * (np.float32(1) / qn)[:, None]) * (np.float32(1) / rn)[None, :]
    elif metric == "l2":
        approx = np.minimum(2 * approx - ((qn * qn)[:, None] + (rn * rn)[None, :]), 0).astype(np.float32)
    v, i, failed, _ = ext.topk_from_approx(torch.from_numpy(q), torch.from_numpy(r), torch.from_numpy(approx), code, k, pad, 1)
    ref_v, ref_i = exact_topk(exact_rank_values(q, r, metric), k)
    np.testing.assert_array_equal(i.numpy(), ref_i)
    np.testing.assert_array_equal(v.numpy(), to_output(ref_v, metric))


def test_python_mirror_of_the_error_bound_matches_the_header(ext):
    for d in (7, 256, 2048, 100_000):
        for u_in in (0.0, 2.0**-11):
            assert fb.delta_factor(d, u_in) == ext.error_bound_factor(d, u_in, 0)
            assert fb.delta_factor(d, u_in, truncating=True) == ext.error_bound_factor(d, u_in, 1)
    f = ext.error_bound_factor(256, 0.0, 1)
    assert f > 4 * 256 * U  # tensor cores: at least 4u per term
    for metric in (0, 1, 2):
        got = ext.error_bound(metric, f, 256, 1e-20, 1e-40, 3.0, 1e-20)
        side = fb._Side(torch.ones(1, 256), metric)
        side.norm, side.sq = torch.tensor([1e-20], dtype=torch.float64), torch.tensor([1e-40], dtype=torch.float64)
        other = fb._Side(torch.ones(1, 256), metric)
        other.max_norm, other.min_norm = 3.0, 1e-20
        assert side.delta(metric, f, torch.tensor([0]), other).item() == pytest.approx(got, rel=1e-15)


# ---------------------------------------------------------------------------------------------- finding 11
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_tiny_cosine_rows_stay_exact(ext, backend):
    """Rows scaled by 2^-76 (~1e-23): float32 products (~1e-46) underflow to zero, so the GEMM's relative error
    bound alone certifies garbage (checked below: without the underflow term the fallback answers wrongly);
    the underflow term sends them through the exact band pass. Scaling by a power of two changes no exact
    cosine, so the answer must equal the unscaled one."""
    q, r = random_data(11, 20, 300, 16)
    scale = np.float32(2.0**-76)
    tiny = sim.reduce(q * scale, r * scale, metric="cosine", row_k=5, col_k=3, backend=backend)
    assert tiny.rechecks["rows"] > 0
    ref_v, ref_i = exact_topk(exact_rank_values(q, r, "cosine"), 5)
    np.testing.assert_array_equal(tiny.row_indices, ref_i)
    np.testing.assert_array_equal(tiny.row_values, ref_v)
    ref_cv, ref_ci = exact_topk(exact_rank_values(q, r, "cosine").T, 3)
    np.testing.assert_array_equal(tiny.col_indices, ref_ci)


def test_without_the_underflow_term_tiny_rows_are_certified_wrongly(monkeypatch):
    q, r = random_data(11, 20, 300, 16)
    scale = np.float32(2.0**-76)
    monkeypatch.setattr(fb, "underflow_bound", lambda *args: 0.0)
    wrong = sim.reduce(q * scale, r * scale, metric="cosine", row_k=5, backend="torch")
    assert wrong.rechecks["rows"] < len(q)  # some rows certified on garbage keys
    assert not np.array_equal(wrong.row_indices, exact_topk(exact_rank_values(q, r, "cosine"), 5)[1])


# ---------------------------------------------------------------------------------------------- finding 14
def test_tiles_are_clamped_to_the_problem(ext):
    plan = ext.plan(M=5, N=7, tile_m=65536, tile_n=65536)
    assert plan["cpu_tile"] == (5, 7) and plan["gpu_tile"] == (5, 7)
    big = ext.plan(M=10**6, N=10**6, tile_m=65536, tile_n=65536)
    assert big["cpu_tile"] == (4096, 4096) and big["gpu_tile"] == (8192, 8192)  # 64 / 256 MiB buffers at most
    assert ext.plan(M=10**6, N=10**6)["gpu_tile"] == (2048, 4096)
    q, r = random_data(14, 5, 7, 8)
    for backend in ("auto", "torch"):
        res = sim.reduce(q, r, row_k=3, col_k=2, stats=True, tile=65536, backend=backend)
        np.testing.assert_array_equal(res.row_indices, exact_topk(exact_rank_values(q, r, "cosine"), 3)[1])


# ---------------------------------------------------------------------------------------------- finding 3
def test_row_lists_of_any_length_plan_and_insertion_rule(ext):
    small = ext.plan(M=100, N=10_000, kr=14)["row_scan"]
    assert small["shared"] and not small["warp_insert"] and small["smem_bytes"] == 8 * 14 * 12
    big = ext.plan(M=100, N=10_000, kr=5000)["row_scan"]  # 4096 + pad no longer a limit
    assert not big["shared"] and big["warp_insert"] and big["smem_bytes"] == 0
    mid = ext.plan(M=100, N=10_000, kr=1000)["row_scan"]
    assert mid["shared"] and mid["warp_insert"] and mid["warps_per_block"] == 4
    # the warp insertion's position rule (count of entries ranking before) equals topk_insert's
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 80))
        vals = np.sort(rng.integers(0, 6, n).astype(np.float32))[::-1].copy()
        idx = np.zeros(n, np.int64)
        for p in range(n):
            idx[p] = rng.integers(0, 50)
        order = np.lexsort((idx, -vals))
        vals, idx = vals[order], idx[order]
        empty = int(rng.integers(0, n + 1))
        if empty:
            vals[-empty:], idx[-empty:] = -np.inf, np.iinfo(np.int64).max
        v, i = float(rng.integers(0, 6)), int(rng.integers(0, 50))
        pos = ext.header_topk_position(torch.from_numpy(vals), torch.from_numpy(idx), v, i)
        expected = sum(1 for a, b in zip(vals, idx) if a > v or (a == v and b < i))
        assert pos == expected
    q, r = random_data(3, 6, 700, 8)
    res = sim.reduce(q, r, metric="l2", row_k=650)
    ref_v, ref_i = exact_topk(exact_rank_values(q, r, "l2"), 650)
    np.testing.assert_array_equal(res.row_indices, ref_i)


# ---------------------------------------------------------------------------------------------- findings 4, 5, 12
def test_column_kernels_fill_the_gpu_and_streaming_chunks_are_bounded(ext):
    plan = ext.plan(M=25_000, N=10_000, sm_count=132)
    slabs = plan["col_slabs"]
    blocks = -(-4096 // 256) * slabs
    assert blocks >= 4 * 132 - 16 and 2048 // slabs >= 64  # ~4 blocks per SM, >= 64 rows per slab
    assert ext.plan(M=100, N=100, sm_count=132)["col_slabs"] == 1
    # two pinned + two device buffers: each <= 20 % of free device memory and <= 512 MiB, whole tiles
    row_bytes = 256 * 2
    rows = ext.plan(M=10, N=10**8, row_bytes=row_bytes, free_bytes=80 << 30)["stream_chunk_rows"]
    assert rows * row_bytes <= 512 << 20 and rows % 4096 == 0 and rows > 0
    rows = ext.plan(M=10, N=10**8, row_bytes=row_bytes, free_bytes=1 << 30)["stream_chunk_rows"]
    assert rows * row_bytes <= 0.2 * (1 << 30)
    assert ext.plan(M=10, N=5000, env_rows=400)["stream_chunk_rows"] == 400


# ---------------------------------------------------------------------------------------------- CPU scheduling
def test_cpu_work_units_are_single_blocks_without_statistics(ext):
    plan = ext.plan(M=25_000, N=10_000, threads=2)
    assert plan["cpu_tile"] == (512, 512) and plan["cpu_work_units"] == plan["cpu_blocks"] == 49
    with_stats = ext.plan(M=25_000, N=10_000, threads=2, stats=True)
    assert with_stats["cpu_work_units"] == 49  # 49 x 10,000 x 40 B fits 64 MiB
    huge = ext.plan(M=10**6, N=10**6, threads=2, stats=True)
    assert huge["cpu_work_units"] * 10**6 * 40 <= 64 << 20 or huge["cpu_work_units"] == 8


# ---------------------------------------------------------------------------------------------- finding 1
def test_statistics_depend_on_the_gemm_summation_order():
    """Why GPU statistics are compared with stats_atol: the same float32 scores summed in another order (as
    cuBLAS does vs MKL) move L2 minima of near-duplicates far beyond rtol 1e-5 / atol 1e-9."""
    q, r = clustered_data(31, 149, 1501, 33)
    res = sim.reduce(q, r, metric="l2", stats=True)

    def l2_min(order):
        qq, rr = q[:, order], r[:, order]
        dots = np.zeros((len(q), len(r)), np.float32)
        for d in range(qq.shape[1]):  # float32 accumulation in this order
            dots += np.outer(qq[:, d], rr[:, d]).astype(np.float32)
        sq = (2 * dots - ((q.astype(np.float64) ** 2).sum(1)[:, None] + (r.astype(np.float64) ** 2).sum(1)[None, :]).astype(np.float32))
        return np.sqrt(-np.minimum(sq, 0)).min(1)

    other = l2_min(np.arange(33)[::-1])
    got = res.row_stats.numpy().min
    assert not np.allclose(got, other, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got, other, rtol=1e-6, atol=stats_atol(q, r, "l2"))
