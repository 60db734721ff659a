"""The similarity step on Ray (issue 9): blocks reduced as Ray tasks and merged on the driver equal the
one-pass result for every reduction — random and clustered data, ties across shards, unequal shards,
query shards × database shards — and a shard task whose worker is killed is retried with the same result."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ray_testkit import need_ray, ray_cluster  # noqa: F401  (the session fixture)
from similarity_testkit import clustered_data, random_data

need_ray()

from fprt.runtime import similarity as sim  # noqa: E402
from fprt.runtime.distributed.shards import Block, SearchArgs, merge_blocks, run_local, search_blocks  # noqa: E402
from fprt.runtime.distributed.similarity import KILL_ENV, RaySimilarity  # noqa: E402
from fprt.runtime.methods.reductions import search  # noqa: E402

ROW_K, COL_K, G = 6, 4, 5
LISTS = ("row_values", "row_indices", "col_values", "col_indices", "group_best", "group_arg")


def make(kind):
    q, r = (random_data if kind == "random" else clustered_data)(9, 149, 1501, 33)
    r[[700, 1200, 1450]] = r[3]  # exact ties across database shards
    q[[90, 140]] = q[2]  # and across query shards
    groups = np.random.default_rng(9).integers(0, G - 1, r.shape[0])  # label G-1 unused: an empty group
    groups[:300] = 0  # the first database shard holds one group only
    return q, r, groups


def blocks_of(q_sizes, r_sizes):
    out, q0 = [], 0
    for qs in q_sizes:
        r0 = 0
        for rs in r_sizes:
            out.append(Block(q0, q0 + qs, r0, r0 + rs))
            r0 += rs
        q0 += qs
    return out


def assert_same_reductions(merged, full, exact=False, scale=1.0):
    """Lists exact. Moments exact when ``exact``, else to the float32 GEMM's own precision: the extension's
    score of one pair differs by an ulp or so between tile shapes (so a mean near 0 is compared on
    ``scale``, the size of the scores; for L2 the expanded form's error is ~eps·|x|² in d²)."""
    for f in LISTS:
        np.testing.assert_array_equal(np.asarray(getattr(merged, f)), np.asarray(getattr(full, f)), err_msg=f)
    for which in ("row_stats", "col_stats", "global_stats"):
        a, b = getattr(merged, which).numpy(), getattr(full, which).numpy()
        np.testing.assert_array_equal(a.count, b.count, err_msg=which)
        for f in ("mean", "std", "min", "max"):
            if exact:
                np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f"{which}.{f}")
            else:
                np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-6, atol=1e-7 * scale,
                                           err_msg=f"{which}.{f}")


def assert_same_found(a, b, stats_rtol=1e-9):
    for f in ("row_values", "row_indices", "col_values", "col_indices", "group_best"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=f)
    assert a.count == b.count
    for f in ("mean", "std"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=stats_rtol, err_msg=f)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_ray_blocks_merge_to_the_one_pass_result(ray_cluster, metric, kind):
    q, r, groups = make(kind)
    full = sim.reduce(q, r, metric=metric, row_k=ROW_K, col_k=COL_K, groups=groups, n_groups=G, stats=True)
    a = SearchArgs(metric=metric, k=ROW_K, col_k=COL_K, n_groups=G, stats=True)
    engine = RaySimilarity(cluster=ray_cluster)
    top = float(np.abs(np.concatenate([q, r])).max())
    scale = 100 * top**2 if metric == "l2" else max(abs(float(full.global_stats.min)), abs(float(full.global_stats.max)))
    # unequal query shards (one of a single query); then query shards × unequal database shards
    for blocks in (blocks_of([1, 60, 88], [1501]), blocks_of([1, 60, 88], [3, 297, 700, 501])):
        parts = engine.run(blocks, q, r, groups, a)
        assert len(parts) == len(blocks)
        merged = merge_blocks(blocks, parts, a, len(q), len(r))
        assert_same_reductions(merged, full, scale=scale)
        # and bit for bit what the same blocks give in this process: Ray moves and merges, it changes nothing
        assert_same_reductions(merged, merge_blocks(blocks, run_local(blocks, q, r, groups, a), a, len(q), len(r)), exact=True)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_ray_search_equals_the_local_search(ray_cluster, metric):
    """What the scoring methods see (``Found``): the Ray engine against ``reductions.search`` in this process."""
    q, r, groups = make("clustered")
    engine = RaySimilarity(query_shards=3, cluster=ray_cluster)
    got = engine(q, r, metric=metric, k=ROW_K, col_k=COL_K, groups=groups, n_groups=G, stats=True)
    assert_same_found(got, search(q, r, metric=metric, k=ROW_K, col_k=COL_K, groups=groups, n_groups=G, stats=True))
    # real x real with the self pairs left out (VCMI's rules), sharded so the diagonal crosses shards
    got = engine(q, q, metric=metric, k=3, col_k=2, stats=True, exclude_self=True)
    ref = search(q, q, metric=metric, k=3, col_k=2, stats=True, exclude_self=True)
    assert_same_found(got, ref)
    assert got.count == len(q) * (len(q) - 1)
    assert (got.row_indices != np.arange(len(q))[:, None]).all()
    # database shards as well: lists still exact
    both = RaySimilarity(query_shards=3, database_shards=4, cluster=ray_cluster)
    assert_same_found(both(q, r, metric=metric, k=ROW_K, col_k=COL_K, groups=groups, n_groups=G),
                      search(q, r, metric=metric, k=ROW_K, col_k=COL_K, groups=groups, n_groups=G))
    assert both.calls[-1]["query_shards"] == 3 and both.calls[-1]["database_shards"] == 4


def test_a_killed_shard_task_is_retried_with_the_same_result(ray_cluster, tmp_path, monkeypatch):
    q, r, groups = make("random")
    kw = dict(metric="cosine", k=ROW_K, col_k=COL_K, groups=groups, n_groups=G, stats=True)
    reference = search_blocks(q, r, **kw)  # one block, in this process
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ENV, str(marker))
    got = RaySimilarity(query_shards=4, cluster=ray_cluster)(q, r, **kw)
    assert marker.exists(), "no shard task was killed"
    pid = int(marker.read_text())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):  # the worker really died (SIGKILL); Ray ran the block again
        os.kill(pid, 0)
    assert_same_found(got, reference)


def test_plan_follows_the_cluster(ray_cluster):
    engine = RaySimilarity(cluster=ray_cluster)
    assert engine.plan(10, 1000) == (1, 1)  # small: one shard
    qs, ds = engine.plan(100_000, 1000)
    assert qs == 2 * ray_cluster.cpus and ds == 1  # two per CPU slot
    assert RaySimilarity(cluster=ray_cluster, database_bytes=1 << 20).plan(1000, 10 << 20)[1] == 10
