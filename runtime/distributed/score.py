"""``fprt score --ray auto|ADDRESS [--workers N]``: ``fprt.runtime.score`` with its two heavy stages on Ray.

    from fprt.runtime.distributed import score_on_ray
    r = score_on_ray("model.onnx", "data/", "runs/x", ray="auto", actors=2, labels="data/test/labels.csv")

Everything else — finding the images, the cache lookup, the scoring rules, run.csv / scores.csv /
metrics / plots — is the local ``score`` itself, so the outputs are the same files. Swapped in:

- ``stages=RayEmbedStage``: decode + embed on Ray Data, the workers writing the shared cache;
- ``reductions.use_engine(RaySimilarity)`` around the call: query-sharded similarity tasks merged exactly;
- on a multi-node cluster, ``hasher`` / ``screener`` from ``RayFilePass``: the content hashes and the
  bad-file checks read on the workers (one machine keeps the driver's threads).

summary.json gains a ``ray`` section (cluster, actors, shards, seconds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def score_on_ray(model, data, out, *, ray: str = "auto", actors: int | None = None, cpus_per_actor: int = 1,
                 gpus_per_actor: float | None = None, query_shards: int | None = None,
                 database_shards: int | None = None, file_pass: str = "auto", **score_kwargs: Any):
    """Run ``fprt.runtime.score(model, data, out, **score_kwargs)`` on Ray (see the module docstring).

    ``ray``: ``"auto"`` (a local instance with every core, shut down afterwards) or a cluster address;
    ``actors``: embed actors (``--workers`` with ``--ray``; default: the cluster's CPUs / ``cpus_per_actor``,
    or its GPUs with ``device="cuda"``); ``query_shards`` / ``database_shards``: similarity shards (default: from the
    cluster's size and memory); ``file_pass``: where the files are hashed and screened — ``"ray"`` (on the
    workers, ``RayFilePass``), ``"driver"`` (in this process, as a local run) or ``"auto"`` (the workers when
    the cluster has more than one node)."""
    from fprt.errors import FprtError
    from fprt.io import atomic_write_json
    from fprt.runtime.api import score
    from fprt.runtime.distributed.cluster import connect
    from fprt.runtime.distributed.embed import RayEmbedStage
    from fprt.runtime.distributed.files import RayFilePass
    from fprt.runtime.distributed.similarity import RaySimilarity
    from fprt.runtime.methods.reductions import use_engine

    if file_pass not in ("auto", "driver", "ray"):
        raise FprtError(f"file_pass must be auto, driver or ray, got {file_pass!r}")
    device = score_kwargs.get("device", "cpu")
    with connect(ray) as cluster:
        files = RayFilePass() if file_pass == "ray" or (file_pass == "auto" and cluster.nodes > 1) else None
        if files is not None:
            score_kwargs.update(hasher=files.hash_files, screener=files.screen_files)
        stage = RayEmbedStage(actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                              cluster=cluster)
        engine = RaySimilarity(query_shards=query_shards, database_shards=database_shards, cluster=cluster,
                               gpus_per_task=1.0 if device == "cuda" and cluster.gpus else 0.0)
        with use_engine(engine):
            result = score(model, data, out, stages=stage, **score_kwargs)
        section = {**cluster.describe(), "files": files.info if files is not None else "driver", "embed": stage.info,
                   "similarity": engine.calls}
    result.summary["ray"] = section
    summary = json.loads(Path(result.summary_json).read_text())
    summary["ray"] = section
    atomic_write_json(result.summary_json, summary)
    return result
