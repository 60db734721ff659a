"""Merging sharded similarity results (what the Ray scale-out does) equals the one-pass result (issues 6, 9)."""

from __future__ import annotations

import numpy as np
import pytest

from fprt.errors import InputError
from fprt.runtime import similarity as sim

from similarity_testkit import assert_stats_close, clustered_data, random_data, stats_atol

ROW_K, COL_K, G = 6, 4, 5


def one_pass(q, r, groups, metric, **kw):
    return sim.reduce(q, r, metric=metric, row_k=ROW_K, col_k=COL_K, groups=groups, n_groups=G, stats=True, **kw)


def query_shards(q, r, groups, metric, sizes):
    parts, s = [], 0
    for size in sizes:
        qs = q[s : s + size]
        parts.append(sim.reduce(qs, r, metric=metric, row_k=ROW_K, col_k=min(COL_K, size), groups=groups,
                                n_groups=G, stats=True))
        s += size
    return parts


def database_shards(q, r, groups, metric, sizes):
    parts, s = [], 0
    for size in sizes:
        parts.append(sim.reduce(q, r[s : s + size], metric=metric, row_k=min(ROW_K, size), col_k=COL_K,
                                groups=groups[s : s + size], n_groups=G, stats=True))
        s += size
    return parts


def assert_equal_results(merged, full, atol):
    """Top-k lists and group best bit for bit; statistics within the tolerance of float32 GEMM scores
    (a shard's GEMM may round the last bit of a score differently)."""
    for f in ("row_values", "row_indices", "col_values", "col_indices", "group_best", "group_arg"):
        np.testing.assert_array_equal(np.asarray(getattr(merged, f)), np.asarray(getattr(full, f)), err_msg=f)
    assert merged.n_queries == full.n_queries and merged.n_database == full.n_database
    for which in ("row_stats", "col_stats", "global_stats"):
        assert_stats_close(getattr(merged, which), getattr(full, which), atol)


def make(kind, metric):
    q, r = (random_data if kind == "random" else clustered_data)(21, 149, 1501, 33)
    r[[700, 1200, 1450]] = r[3]  # exact ties across database shards
    q[[90, 140]] = q[2]  # and across query shards
    rng = np.random.default_rng(21)
    groups = rng.integers(0, G - 1, r.shape[0])  # label G-1 unused: empty everywhere
    groups[:300] = 0  # shard 1 of the database holds a single group: the others are empty there
    return q, r, groups


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_query_shards_merge_to_the_one_pass_result(metric, kind):
    q, r, groups = make(kind, metric)
    full = one_pass(q, r, groups, metric)
    merged = sim.Reductions.merge_query_shards(query_shards(q, r, groups, metric, [1, 60, 88]), col_k=COL_K)
    assert_equal_results(merged, full, stats_atol(q, r, metric))


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_database_shards_merge_to_the_one_pass_result(metric, kind):
    q, r, groups = make(kind, metric)
    full = one_pass(q, r, groups, metric)
    merged = sim.Reductions.merge_database_shards(database_shards(q, r, groups, metric, [3, 297, 700, 501]),
                                                  row_k=ROW_K)
    assert_equal_results(merged, full, stats_atol(q, r, metric))


def test_two_level_sharding_and_explicit_offsets():
    q, r, groups = make("clustered", "cosine")
    full = one_pass(q, r, groups, "cosine")
    # database shards given out of order with explicit offsets, each itself split into query shards
    db_sizes = [(0, 800), (800, 701)]
    parts, offsets = [], []
    for start, size in reversed(db_sizes):
        qparts = []
        for qs, qn in ((0, 100), (100, 49)):
            qparts.append(sim.reduce(q[qs : qs + qn], r[start : start + size], metric="cosine", row_k=ROW_K,
                                     col_k=COL_K, groups=groups[start : start + size], n_groups=G, stats=True))
        parts.append(sim.merge_query_shards(qparts))
        offsets.append(start)
    merged = sim.merge_database_shards(parts, offsets=offsets)
    for f in ("row_values", "row_indices", "group_best", "group_arg"):
        np.testing.assert_array_equal(getattr(merged, f), getattr(full, f), err_msg=f)
    # column results come in database-shard order here (reversed): undo it before comparing
    col_v = np.concatenate([merged.col_values[701:], merged.col_values[:701]])
    col_i = np.concatenate([merged.col_indices[701:], merged.col_indices[:701]])
    np.testing.assert_array_equal(col_v, full.col_values)
    np.testing.assert_array_equal(col_i, full.col_indices)
    assert float(merged.global_stats.mean) == pytest.approx(float(full.global_stats.mean), rel=1e-9)
    assert float(merged.global_stats.std) == pytest.approx(float(full.global_stats.std), rel=1e-6)


def test_merges_refuse_mismatched_parts():
    q, r = random_data(22, 30, 100, 8)
    a = sim.reduce(q, r, row_k=3, metric="cosine")
    b = sim.reduce(q, r, row_k=3, metric="l2")
    with pytest.raises(InputError, match="different metrics"):
        sim.merge_query_shards([a, b])
    c = sim.reduce(q, r[:50], row_k=3)
    with pytest.raises(InputError, match="n_database"):
        sim.merge_query_shards([a, c])
    with pytest.raises(InputError, match="offsets"):
        sim.merge_database_shards([a, c], offsets=[0])
    with pytest.raises(InputError, match="no parts"):
        sim.merge_query_shards([])
