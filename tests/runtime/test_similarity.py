"""fprt.runtime.similarity on the CPU: against scipy / NumPy float64 and FAISS, exactness, tile-size
invariance, the pure-PyTorch fallback, ties, errors (issue 6)."""

from __future__ import annotations

import warnings

import faiss
import numpy as np
import pytest
import torch

from fprt.errors import FprtError, InputError
from fprt.runtime import extension_loader
from fprt.runtime import similarity as sim
from fprt.runtime import similarity_fallback as fb

from similarity_testkit import (
    METRIC_CODE,
    assert_topk_matches,
    assert_stats_close,
    closeness,
    clustered_data,
    exact_rank_values,
    exact_topk,
    random_data,
    scores64,
    stats_atol,
    to_output,
)

METRICS = ["cosine", "ip", "l2"]
FIELDS = ["row_values", "row_indices", "col_values", "col_indices", "group_best", "group_arg"]


@pytest.fixture(scope="module")
def ext_backend():
    """The compiled CPU extension must be available wherever the suite runs (make test builds it)."""
    loaded = extension_loader.load("cpu")
    assert loaded.module is not None, f"the CPU similarity extension is unavailable: {loaded.detail}"
    return loaded.module


def data(kind: str, seed: int, m: int, n: int, d: int):
    return random_data(seed, m, n, d) if kind == "random" else clustered_data(seed, m, n, d)


def assert_same_reductions(a, b, stats_atol=None):
    """Top-k, column top-k and group results bit for bit; statistics within `stats_atol` (they are
    computed from the float32 GEMM scores, whose last bits depend on the GEMM's blocking)."""
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f)
    if stats_atol is not None:
        for which in ("row_stats", "col_stats", "global_stats"):
            assert_stats_close(getattr(a, which), getattr(b, which), stats_atol)


# ----------------------------------------------------------------------------------------------
# Against independent oracles


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "m,n,d,tile", [(15, 149, 7, (32, 33)), (149, 1501, 33, (33, 99)), (1501, 149, 64, (99, 32)), (149, 1501, 33, None)]
)
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_topk_matches_scipy(ext_backend, metric, m, n, d, tile, kind):
    q, r = data(kind, 1, m, n, d)
    k = min(10, n)
    res = sim.reduce(q, r, metric=metric, row_k=k, col_k=min(5, m), tile=tile)
    assert res.backend == "extension-cpu"
    assert res.larger_is_closer == (metric != "l2")
    ref = scores64(q, r, metric)
    assert_topk_matches(res.row_values, res.row_indices, ref, metric)
    assert_topk_matches(res.col_values, res.col_indices, ref.T, metric)


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_topk_matches_faiss(ext_backend, metric, kind):
    q, r = data(kind, 2, 300, 2000, 48)
    k = 10
    values, indices = sim.topk(q, r, k, metric)
    if metric == "ip":
        fv, fi = faiss.knn(q, r, k, metric=faiss.METRIC_INNER_PRODUCT)
        ref = scores64(q, r, "ip")
    else:
        fv, fi = faiss.knn(q, r, k, metric=faiss.METRIC_L2)
        fv = np.sqrt(np.maximum(fv, 0))  # FAISS reports squared distances; ours are distances
        ref = scores64(q, r, "l2")
    # FAISS computes in float32 (expanded form for L2) and breaks ties its own way: its values agree with
    # ours to its precision, and both agree with the float64 order wherever that order is separated by
    # more than FAISS's error.
    np.testing.assert_allclose(values, fv, rtol=1e-4, atol=1e-4)
    assert_topk_matches(fv, fi.astype(np.int64), ref, metric, gap=1e-3, rtol=1e-4, atol=1e-4)
    assert_topk_matches(values, indices, ref, metric)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_groups_and_stats_match_numpy(ext_backend, metric, kind):
    q, r = data(kind, 3, 149, 1501, 33)
    rng = np.random.default_rng(3)
    groups = np.sort(rng.integers(0, 5, r.shape[0]))  # runs of labels, as real databases are ordered
    groups[::7] = rng.integers(0, 5, groups[::7].size)  # and some interleaving
    res = sim.reduce(q, r, metric=metric, groups=groups, n_groups=6, stats=True, tile=(33, 99))
    ref = scores64(q, r, metric)
    close = closeness(ref, metric)
    for g in range(6):
        members = np.flatnonzero(groups == g)
        if members.size == 0:  # label 5 is never used: an empty group
            assert np.all(res.group_arg[:, g] == -1)
            assert np.all(np.isinf(res.group_best[:, g]))
            continue
        best = members[np.argmax(close[:, members], axis=1)]
        np.testing.assert_allclose(res.group_best[:, g], ref[np.arange(len(q)), best], rtol=1e-5, atol=1e-7)
        got = close[np.arange(len(q)), res.group_arg[:, g]]
        np.testing.assert_allclose(got, close[np.arange(len(q)), best], rtol=1e-5, atol=1e-7)
        assert np.all(groups[res.group_arg[:, g]] == g)
    # statistics over the float32 GEMM scores, against float64 brute force
    st = res.row_stats
    atol = stats_atol(q, r, metric)
    np.testing.assert_array_equal(st.count, np.full(len(q), r.shape[0]))
    np.testing.assert_allclose(st.mean, ref.mean(1), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(st.std, ref.std(1), rtol=1e-4, atol=atol)
    np.testing.assert_allclose(st.min, ref.min(1), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(st.max, ref.max(1), rtol=1e-5, atol=atol)
    cs = res.col_stats
    np.testing.assert_allclose(cs.mean, ref.mean(0), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(cs.std, ref.std(0), rtol=1e-4, atol=atol)
    np.testing.assert_allclose(cs.min, ref.min(0), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(cs.max, ref.max(0), rtol=1e-5, atol=atol)
    gs = res.global_stats
    assert int(gs.count) == ref.size
    np.testing.assert_allclose(float(gs.mean), ref.mean(), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(float(gs.std), ref.std(), rtol=1e-5, atol=atol)
    assert float(gs.min) == pytest.approx(ref.min(), rel=1e-5, abs=atol)
    assert float(gs.max) == pytest.approx(ref.max(), rel=1e-5, abs=atol)


def test_nearest_centroid_matches_argmax(ext_backend):
    q, c = random_data(4, 500, 7, 16)
    for metric in METRICS:
        values, idx = sim.nearest_centroid(q, c, metric)
        ref = scores64(q, c, metric)
        np.testing.assert_array_equal(idx, np.argmax(closeness(ref, metric), axis=1))
        np.testing.assert_allclose(values, ref[np.arange(500), idx], rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------------------
# Exactness: the exact float64 top-k, bit for bit, whatever the tiling


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_results_are_exact_and_tile_invariant(ext_backend, metric, kind):
    q, r = data(kind, 5, 149, 1501, 33)
    rv = exact_rank_values(q, r, metric)
    k = 7
    ref_v, ref_i = exact_topk(rv, k)
    ref_cv, ref_ci = exact_topk(rv.T, 4)
    groups = np.arange(r.shape[0]) % 3
    runs = [
        sim.reduce(q, r, metric=metric, row_k=k, col_k=4, groups=groups, stats=True, tile=t)
        for t in [(32, 33), (99, 32), (1, 1501), None]
    ]
    for res in runs:
        np.testing.assert_array_equal(res.row_indices, ref_i)
        np.testing.assert_array_equal(res.row_values, to_output(ref_v, metric))
        np.testing.assert_array_equal(res.col_indices, ref_ci)
        np.testing.assert_array_equal(res.col_values, to_output(ref_cv, metric))
        for g in range(3):
            members = np.flatnonzero(groups == g)
            gv, gi = exact_topk(rv[:, members], 1)
            np.testing.assert_array_equal(res.group_arg[:, g], members[gi[:, 0]])
            np.testing.assert_array_equal(res.group_best[:, g], to_output(gv[:, 0], metric))
        assert_same_reductions(res, runs[0], stats_atol=stats_atol(q, r, metric))


@pytest.mark.parametrize("metric", METRICS)
def test_near_tie_clusters_go_through_the_exact_band_pass(ext_backend, metric):
    """30 database rows within 1e-7 of each other around each query: more near-ties than the candidate
    lists' spare places, so the certificate fails and the exact band pass must give the exact answer."""
    rng = np.random.default_rng(6)
    d = 24
    base = rng.standard_normal((4, d)).astype(np.float32)
    cluster = np.repeat(base, 30, axis=0) + 1e-7 * rng.standard_normal((120, d)).astype(np.float32)
    r = np.concatenate([rng.standard_normal((400, d)).astype(np.float32), cluster])
    rng.shuffle(r)
    q = np.concatenate([base + 1e-3 * rng.standard_normal((4, d)).astype(np.float32), rng.standard_normal((20, d)).astype(np.float32)])
    q = np.concatenate([q, np.repeat(q[:2], 15, axis=0)])  # near-tie columns too
    groups = np.zeros(r.shape[0], dtype=np.int64)
    res = sim.reduce(q, r, metric=metric, row_k=5, col_k=5, groups=groups, tile=(16, 64))
    assert res.rechecks["rows"] > 0 and res.rechecks["cols"] > 0 and res.rechecks["group_cells"] > 0
    rv = exact_rank_values(q, r, metric)
    ref_v, ref_i = exact_topk(rv, 5)
    np.testing.assert_array_equal(res.row_indices, ref_i)
    np.testing.assert_array_equal(res.row_values, to_output(ref_v, metric))
    ref_cv, ref_ci = exact_topk(rv.T, 5)
    np.testing.assert_array_equal(res.col_indices, ref_ci)
    np.testing.assert_array_equal(res.col_values, to_output(ref_cv, metric))
    gv, gi = exact_topk(rv, 1)
    np.testing.assert_array_equal(res.group_arg[:, 0], gi[:, 0])
    fallback = sim.reduce(q, r, metric=metric, row_k=5, col_k=5, groups=groups, tile=(64, 200), backend="torch")
    assert fallback.rechecks["rows"] > 0
    assert_same_reductions(res, fallback)


def test_exact_keys_match_between_extension_and_fallback_and_scipy(ext_backend):
    rng = np.random.default_rng(7)
    for d in (1, 3, 4, 5, 33, 256):
        a = torch.from_numpy(rng.standard_normal((50, d)).astype(np.float32) * 10)
        b = torch.from_numpy(rng.standard_normal((60, d)).astype(np.float32))
        ia, ib = torch.from_numpy(rng.integers(0, 50, 400)), torch.from_numpy(rng.integers(0, 60, 400))
        an, bn = fb.exact_sqrt(fb.exact_self(a)), fb.exact_sqrt(fb.exact_self(b))
        for metric, code in METRIC_CODE.items():
            ours = ext_backend.exact_keys(a, b, code, ia, ib)  # the CPU's vectorised kernels
            header = ext_backend.exact_keys_header(a, b, code, ia, ib)  # epilogue.h, as the GPU runs it
            theirs = fb.exact_keys(code, a, b, ia, ib, an, bn)  # the pure-torch fallback
            assert torch.equal(ours, header), (metric, d)
            assert torch.equal(ours, theirs), (metric, d)
            ref = scores64(a.numpy(), b.numpy(), metric)[ia.numpy(), ib.numpy()]
            expect = -(ref**2) if metric == "l2" else ref
            np.testing.assert_allclose(ours.numpy(), expect, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Fallback, ties, inputs and outputs


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_fallback_equals_extension(ext_backend, metric, kind):
    q, r = data(kind, 8, 149, 1501, 33)
    groups = (np.arange(r.shape[0]) * 7) % 4
    kwargs = dict(metric=metric, row_k=6, col_k=3, groups=groups, stats=True)
    ext = sim.reduce(q, r, tile=(33, 99), **kwargs)
    torch_run = sim.reduce(q, r, tile=(64, 256), backend="torch", **kwargs)
    assert ext.backend == "extension-cpu" and torch_run.backend == "torch-cpu"
    assert_same_reductions(ext, torch_run, stats_atol=stats_atol(q, r, metric))


def test_fallback_used_with_one_warning(monkeypatch):
    q, r = random_data(9, 40, 300, 8)
    monkeypatch.setitem(extension_loader._LOADED, "cpu", extension_loader.Loaded("cpu", None, "missing", "test: no module"))
    monkeypatch.setattr(sim, "_WARNED", set())
    with pytest.warns(RuntimeWarning, match="pure-PyTorch fallback"):
        a = sim.reduce(q, r, row_k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = sim.reduce(q, r, row_k=3)  # no second warning
    assert a.backend == b.backend == "torch-cpu"
    with pytest.raises(FprtError, match="unavailable"):
        sim.reduce(q, r, row_k=3, backend="extension")


def test_ties_go_to_the_lower_index(ext_backend):
    rng = np.random.default_rng(10)
    d = 12
    r = rng.standard_normal((200, d)).astype(np.float32)
    r[[150, 30, 90]] = r[5]  # rows 5, 30, 90, 150 identical
    q = np.concatenate([r[5:6] * 1.01, rng.standard_normal((30, d)).astype(np.float32)])
    q[[20, 7, 12]] = q[0]  # queries 0, 7, 12, 20 identical
    groups = np.where(np.arange(200) < 100, 0, 1)
    for metric in METRICS:
        for backend in ("extension", "torch"):
            res = sim.reduce(q, r, metric=metric, row_k=4, col_k=4, groups=groups, tile=(8, 16), backend=backend)
            if metric != "ip":  # (for ip a longer vector may beat the duplicates)
                assert res.row_indices[0].tolist() == [5, 30, 90, 150]
                assert res.col_indices[5].tolist() == [0, 7, 12, 20]
                assert res.group_arg[0].tolist() == [5, 150]
                assert len(set(res.row_values[0].tolist())) == 1  # four exactly equal scores
            for qi in (7, 12, 20):
                np.testing.assert_array_equal(res.row_indices[qi], res.row_indices[0])
    # equal scores from different vectors (inner product): (1,0) and (0,1) against (1,1)
    r2 = np.array([[0, 1], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    q2 = np.array([[1, 1]], dtype=np.float32)
    values, idx = sim.topk(q2, r2, 4, "ip")
    assert idx.tolist() == [[0, 1, 2, 3]] and values.tolist() == [[1, 1, 1, 1]]


def test_outputs_follow_the_input_kind(ext_backend):
    q, r = random_data(11, 20, 50, 8)
    v, i = sim.topk(q, r, 3)
    assert isinstance(v, np.ndarray) and v.dtype == np.float32 and i.dtype == np.int64 and v.shape == (20, 3)
    tv, ti = sim.topk(torch.from_numpy(q), torch.from_numpy(r), 3)
    assert isinstance(tv, torch.Tensor) and tv.dtype == torch.float32 and ti.dtype == torch.int64
    np.testing.assert_array_equal(tv.numpy(), v)
    np.testing.assert_array_equal(ti.numpy(), i)
    # float64 inputs are rounded to float32; float16 / bfloat16 widen exactly
    v64, i64 = sim.topk(q.astype(np.float64), r.astype(np.float64), 3)
    np.testing.assert_array_equal(i64, i)
    qb = torch.from_numpy(q).bfloat16()
    rb = torch.from_numpy(r).bfloat16()
    vb, ib = sim.topk(qb, rb, 3)
    vf, iff = sim.topk(qb.float(), rb.float(), 3)
    assert torch.equal(vb, vf) and torch.equal(ib, iff)


def test_extension_status_reports_the_cpu_module(ext_backend):
    rows = sim.extension_status()
    assert [dev for dev, _, _ in rows] == ["CPU", "CUDA"]
    assert all(status in ("ok", "missing", "error", "info") for _, status, _ in rows)
    assert rows[0][1] == "ok", rows[0]
    if not torch.cuda.is_available():
        assert rows[1][1] != "ok"  # a CUDA module, if built, is reported but not usable here


def test_prebuilt_module_for_another_torch_is_rejected():
    class Foreign:
        __name__ = "fprt._similarity_cpu"

        @staticmethod
        def build_info():
            return {"torch_version": "1.0.0", "source_hash": "x"}

    assert "torch 1.0.0" in extension_loader._validate("cpu", Foreign)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda q, r: sim.topk(q[:, :5], r, 3), "dimensions"),
        (lambda q, r: sim.topk(q[:0], r, 3), "empty"),
        (lambda q, r: sim.topk(q, r[:0], 3), "empty"),
        (lambda q, r: sim.topk(q, r, 0), "at least 1"),
        (lambda q, r: sim.topk(q, r, 51), "out of range"),
        (lambda q, r: sim.reduce(q, r, col_k=21), "out of range"),
        (lambda q, r: sim.reduce(q, r), "nothing to compute"),
        (lambda q, r: sim.topk(q[0], r, 3), "2-D"),
        (lambda q, r: sim.topk(q.astype(np.int64), r, 3), "floating-point"),
        (lambda q, r: sim.topk(q, r, 3, metric="hamming"), "unknown metric"),
        (lambda q, r: sim.topk(q, r, 2.5), "integer"),
        (lambda q, r: sim.reduce(q, r, groups=np.zeros(49, dtype=int)), "one label per database row"),
        (lambda q, r: sim.reduce(q, r, groups=-np.ones(50, dtype=int)), ">= 0"),
        (lambda q, r: sim.reduce(q, r, groups=np.zeros(50, dtype=int) + 3, n_groups=2), "n_groups"),
        (lambda q, r: sim.reduce(q, r, row_k=2, tile=(0, 5)), "positive"),
        (lambda q, r: sim.topk(q * 1e19, r * 1e19, 3, "ip"), "too large"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    q, r = random_data(12, 20, 50, 8)
    with pytest.raises(InputError, match=message):
        call(q, r)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected_naming_the_row(bad):
    q, r = random_data(13, 20, 50, 8)
    q[7, 3] = bad
    with pytest.raises(InputError, match="Q row 7 contains NaN or Inf"):
        sim.topk(q, r, 3)
    q[7, 3] = 0
    r[44, 0] = bad
    with pytest.raises(InputError, match="R row 44 contains NaN or Inf"):
        sim.reduce(q, r, col_k=2)


def test_zero_rows_are_rejected_for_cosine_only():
    q, r = random_data(14, 20, 50, 8)
    r[9] = 0
    with pytest.raises(InputError, match="R row 9 is zero"):
        sim.topk(q, r, 3, "cosine")
    v, i = sim.topk(q, r, 3, "l2")
    assert v.shape == (20, 3)
