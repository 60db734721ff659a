"""``fprt score --ray auto|ADDRESS [--workers N]``: ``fprt.runtime.score`` with its two heavy steps on Ray.

    from fprt.runtime.distributed import score_on_ray
    r = score_on_ray("model.onnx", "data/", "runs/x", ray="auto", actors=2, labels="data/test/labels.csv")

Everything else — finding the images, the scoring rules, run.csv / scores.csv / metrics / plots, the
output folder transaction — is the local ``score`` itself, so the outputs are the same files. The one
seam it swaps is the runner (``fprt.runtime.pipeline.Runner``): ``RayRunner`` reads, decodes and embeds
on Ray Data actors with the local run's per-file function (each file read once, on the workers: the
driver never reads an image) and runs the similarity step as query-sharded Ray tasks merged exactly.

summary.json gains a ``ray`` section (cluster, actors, shards, seconds).
"""

from __future__ import annotations

from typing import Any


def score_on_ray(model, data, out, *, ray: str = "auto", actors: int | None = None, cpus_per_actor: int = 1,
                 gpus_per_actor: float | None = None, query_shards: int | None = None,
                 database_shards: int | None = None, **score_kwargs: Any):
    """Run ``fprt.runtime.score(model, data, out, **score_kwargs)`` on Ray (see the module docstring).

    ``ray``: ``"auto"`` (a local instance with every core, shut down afterwards) or a cluster address;
    ``actors``: embed actors (``--workers`` with ``--ray``; default: the cluster's CPUs / ``cpus_per_actor``,
    or its GPUs with ``device="cuda"``); ``query_shards`` / ``database_shards``: similarity shards (default:
    from the cluster's size and memory)."""
    from fprt.runtime.api import score
    from fprt.runtime.distributed.cluster import connect
    from fprt.runtime.distributed.embed import RayRunner
    from fprt.runtime.distributed.similarity import RaySimilarity

    device = score_kwargs.get("device", "cpu")
    score_kwargs.pop("file_pass", None)  # the driver no longer reads the files: nothing to place
    with connect(ray) as cluster:
        engine = RaySimilarity(query_shards=query_shards, database_shards=database_shards, cluster=cluster,
                               gpus_per_task=1.0 if device == "cuda" and cluster.gpus else 0.0)
        runner = RayRunner(actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                           cluster=cluster, similarity_engine=engine)
        runner.info = {**cluster.describe(), "files": "workers"}
        return score(model, data, out, runner=runner, **score_kwargs)
