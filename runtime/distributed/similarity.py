"""The similarity step on Ray: query shards (× database shards) as tasks, merged exactly on the driver.

    engine = RaySimilarity()                      # shards sized from the cluster
    with reductions.use_engine(engine):           # every scoring method's search() goes through Ray
        ...
    found = engine(Q, R, metric="cosine", k=5, col_k=1)   # or directly: the reductions.search signature

Each ``search`` puts the database once in the object store (``ray.put``; every task on a node reads
that one copy, zero-copy), cuts the queries into shards and runs one task per block
(``fprt.runtime.distributed.shards.reduce_block``: the similarity extension on that block). A task
returns only its reductions — row top-k, column top-k candidates, group bests, moments — never a
score matrix; the driver merges them with the extension's exact merge helpers. A database larger
than a quarter of the smallest node's object store is itself cut into shards, each put once.

A task whose worker dies is retried by Ray (``max_retries``); a block is a pure function of its
inputs, so the retried result is the same.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fprt.runtime.distributed.shards import Block, SearchArgs, search_blocks

KILL_ENV = "FPRT_RAY_KILL_SHARD"  # test hook: a marker path; block 1's first attempt SIGKILLs its worker

_REMOTE = None


def _reduce_block_task(q, r, g, q_offset: int, r_offset: int, a: SearchArgs, threads: int, kill_marker: str | None):
    """One block in a Ray worker (arrays arrive from the object store read-only and zero-copy)."""
    import warnings

    import torch

    if kill_marker:
        try:
            fd = os.open(kill_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    torch.set_num_threads(max(1, threads))
    from fprt.runtime.distributed.shards import reduce_block

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")  # object-store arrays are read-only; reduce only reads
        return reduce_block(q, r, g, q_offset, r_offset, a)


def _remote(ray):
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = ray.remote(_reduce_block_task)
    return _REMOTE


@dataclass
class RaySimilarity:
    """``reductions.search`` with the blocks as Ray tasks (see the module docstring).

    ``query_shards``: shards of the query side (default: two per CPU slot of the cluster, at least
    ``min_rows`` queries each); ``database_shards``: shards of the database (default: 1 unless the
    database exceeds ``database_bytes``, default a quarter of the smallest node's object store);
    ``cpus_per_task`` / ``gpus_per_task``: resources of each task (GPU tasks compute on ``cuda``);
    ``max_retries``: how often Ray reruns a task whose worker died."""

    query_shards: int | None = None
    database_shards: int | None = None
    min_rows: int = 256
    database_bytes: int | None = None
    cpus_per_task: int = 1
    gpus_per_task: float = 0.0
    max_retries: int = 5
    cluster: Any = None
    calls: list = field(default_factory=list)  # one record per search: shapes, blocks, seconds (summary.json)

    def __call__(self, queries, database, *, metric: str, k: int = 0, col_k: int = 0, groups=None, n_groups=None,
                 stats: bool = False, exclude_self: bool = False):
        from fprt.runtime.methods.base import as_numpy

        q = np.ascontiguousarray(as_numpy(queries), dtype=np.float32)
        r = q if database is queries else np.ascontiguousarray(as_numpy(database), dtype=np.float32)
        qs, ds = self.plan(q.shape[0], r.nbytes)
        t0 = time.perf_counter()
        found = search_blocks(q, r, metric=metric, k=k, col_k=col_k, groups=groups, n_groups=n_groups, stats=stats,
                              exclude_self=exclude_self, query_shards=qs, database_shards=ds,
                              device="cuda" if self.gpus_per_task else None, run=self.run)
        self.calls.append({"queries": int(q.shape[0]), "database": int(r.shape[0]), "dim": int(q.shape[1]),
                           "metric": metric, "query_shards": min(qs, q.shape[0]), "database_shards": min(ds, r.shape[0]),
                           "seconds": round(time.perf_counter() - t0, 4)})
        return found

    def plan(self, m: int, database_nbytes: int) -> tuple[int, int]:
        """(query shards, database shards) for M queries against a database of that many bytes."""
        cluster = self._cluster()
        slots = max(1, int(cluster.gpus / self.gpus_per_task) if self.gpus_per_task else cluster.cpus // self.cpus_per_task)
        qs = self.query_shards or max(1, min(2 * slots, math.ceil(m / self.min_rows)))
        if self.database_shards:
            ds = self.database_shards
        else:
            budget = self.database_bytes or max(64 << 20, min(cluster.object_store_memory or [4 << 30]) // 4)
            ds = max(1, math.ceil(database_nbytes / budget))
        return int(qs), int(ds)

    def run(self, blocks: Sequence[Block], Q, R, groups, a: SearchArgs) -> list:
        """Reduce ``blocks`` as Ray tasks: each query shard and database shard put once; results in block order."""
        from fprt.runtime.distributed.cluster import require_ray

        ray = require_ray()
        task = _remote(ray).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task or None,
                                    max_retries=self.max_retries, retry_exceptions=False)
        r_refs: dict[tuple[int, int], Any] = {}
        g_refs: dict[tuple[int, int], Any] = {}
        q_refs: dict[tuple[int, int], Any] = {}
        kill = os.environ.get(KILL_ENV) or None
        futures = []
        for i, b in enumerate(blocks):
            rk, qk = (b.r0, b.r1), (b.q0, b.q1)
            if rk not in r_refs:
                r_refs[rk] = ray.put(R[b.r0:b.r1])
                g_refs[rk] = ray.put(groups[b.r0:b.r1]) if groups is not None else None
            if qk not in q_refs:
                q_refs[qk] = ray.put(Q[b.q0:b.q1])
            futures.append(task.remote(q_refs[qk], r_refs[rk], g_refs[rk], b.q0, b.r0, a, self.cpus_per_task,
                                       kill if i == min(1, len(blocks) - 1) else None))
        return ray.get(futures)

    def _cluster(self):
        if self.cluster is None:
            from fprt.runtime.distributed.cluster import Cluster

            self.cluster = Cluster(address="connected", started_here=False, cpus=0, gpus=0, nodes=0)
            self.cluster.refresh()
        return self.cluster
