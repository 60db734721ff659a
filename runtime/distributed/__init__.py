"""fprt.runtime.distributed — ``fprt score --ray auto|ADDRESS``: the same run on a Ray cluster, same outputs.

    from fprt.runtime.distributed import score_on_ray
    result = score_on_ray("model.onnx", "data/", "runs/x", ray="auto", actors=2)   # == fprt.runtime.score(...)

Modules (Ray is imported only inside them, and only when one is used — ``import fprt`` and a run
without ``--ray`` never import Ray):

- ``cluster``    — ``connect("auto" | ADDRESS)``: a local instance with every core, or join a cluster;
                   ``require_ray()`` says how to install the ``[ray]`` extra when Ray is missing.
- ``embed``      — ``RayEmbedStage``: Ray Data reads the file list and ``map_batches`` an actor pool
                   (``EmbedActor``: model loaded once per actor) that decodes, embeds and writes the
                   same content-hash cache a local run writes; a drop-in for ``pipeline.run_stages``.
- ``shards``     — Ray-free: the similarity step cut into blocks (query shards × database shards),
                   each reduced by ``fprt.runtime.similarity.reduce`` and merged exactly with its
                   ``merge_query_shards`` / ``merge_database_shards``; ``search_blocks`` gives the
                   ``reductions.Found`` the scoring methods read.
- ``similarity`` — ``RaySimilarity``: the blocks as Ray tasks (database put once in the object store)
                   plugged into the methods with ``reductions.use_engine``.
- ``score``      — ``score_on_ray``: ``fprt.runtime.score`` with both stages swapped for the Ray ones.
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'fprt[ray]'"


def score_on_ray(*args, **kwargs):
    """``fprt.runtime.distributed.score.score_on_ray`` (see there)."""
    from fprt.runtime.distributed.score import score_on_ray as _score_on_ray

    return _score_on_ray(*args, **kwargs)


def ray_available() -> bool:
    """True when Ray looks installed (found on the path; nothing is imported)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False
