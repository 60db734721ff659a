"""Read + decode + embed on Ray Data: the file list goes in, keys and embeddings come out, the workers write the cache.

``RayRunner`` implements the one seam of ``fprt.runtime.score`` (``fprt.runtime.pipeline.Runner``):
``embed(paths, embedder, ...)`` → ``Embedded`` and ``similarity()`` (the Ray similarity engine):

1. the driver builds a dataset of the FILE LIST (``index``, ``path``) — no image is read by the driver;
2. ``map_batches(EmbedActor, compute=ActorPoolStrategy(size=N), batch_size=B, num_cpus=..., num_gpus=...)``:
   each actor loads the model once in ``__init__`` (ONNX Runtime session / TensorRT runner / torch
   module, from the picklable ``BackendSpec``) and in ``__call__`` handles its batch of paths with the
   local run's per-file function ``fprt.runtime.pipeline.load_file`` (each file read once: content
   SHA-256 = cache key, cache look-up, decode from the same bytes on a miss), runs the model on the
   misses and writes them into the same content-hash cache as a local run (one atomic shard per batch);
3. the driver streams the results back (per image: its key, a status, its rows when computed) and
   hands ``score`` the same ``Embedded`` a local run makes.

Failures: a worker process lost mid-run (killed, OOM, node gone) is restarted by Ray
(``max_restarts=-1``) and its batch retried (``max_task_retries=-1``); batches it had stored stay in the
cache, the retried one is computed again — same bytes, so the outputs do not change. Bad files are
collected as in a local run; ``score`` applies the stop/skip rule once every file was seen.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fprt.errors import FprtError, ModelError

OUT_PREFIX = "out."
KILL_ENV = "FPRT_RAY_KILL_EMBED"  # test hook: a marker path; the first actor call to create it SIGKILLs itself
HIT, COMPUTED, BAD, COPY = "hit", "computed", "bad", "copy"


class EmbedActor:
    """A Ray Data actor: model loaded once per actor; batches of paths → decoded, embedded, cached."""

    def __init__(self, model, cache_root: str | None, model_sha256: str, decode_threads: int = 0,
                 kill_marker: str | None = None) -> None:
        from fprt.runtime.pipeline import Embedder

        self.embedder = Embedder(model, cache_root)  # a BackendSpec is loaded here, once
        got = self.embedder.model.model_sha256
        if model_sha256 and got != model_sha256:
            raise ModelError(
                f"the model loaded on this Ray worker ({getattr(model, 'model', model)}, sha256 {got[:12]}) differs from "
                f"the driver's (sha256 {model_sha256[:12]}): every node must see the same model file at the same path"
            )
        self.decode_threads = decode_threads
        self.kill_marker = kill_marker
        self.shapes: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fprt.runtime.pipeline import _host, load_file

        t0 = time.perf_counter()
        paths = [str(p) for p in batch["path"]]
        n = len(paths)
        keys = np.full(n, "", dtype=object)
        status = np.full(n, BAD, dtype=object)
        reasons = np.full(n, "", dtype=object)
        is_cached = self.embedder.has if self.embedder.cache is not None else None
        todo: list[int] = []
        pixels: list[np.ndarray] = []
        seen: set[bytes] = set()
        for i, p in enumerate(paths):  # the local run's per-file function: one read, hash, look-up, decode
            fr = load_file(Path(p), self.embedder.preprocess, is_cached)
            keys[i] = fr.key.hex() if fr.key is not None else ""
            if fr.bad is not None:
                reasons[i] = fr.bad.reason
            elif fr.hit:
                status[i] = HIT
            elif fr.key in seen:
                status[i] = COPY
            else:
                seen.add(fr.key)
                status[i] = COMPUTED
                todo.append(i)
                pixels.append(fr.pixels)
        t1 = time.perf_counter()
        out = {k: _host(v) for k, v in self.embedder.infer(np.stack(pixels)).items()} if todo else {}
        t2 = time.perf_counter()
        self._maybe_die()
        if todo:
            self.embedder.store([bytes.fromhex(keys[i]) for i in todo], out)
            if self.shapes is None:
                self.shapes = {k: (v.shape[1:], v.dtype) for k, v in out.items()}
        t3 = time.perf_counter()
        result: dict[str, np.ndarray] = {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "key": keys,
            "status": status,
            "reason": reasons,
            "t_read_decode": np.full(n, (t1 - t0) / n),
            "t_infer": np.full(n, (t2 - t1) / n),
            "t_store": np.full(n, (t3 - t2) / n),
        }
        for name, (shape, dtype) in self._output_shapes().items():
            rows = np.zeros((n, *shape), dtype=dtype)
            if todo:
                rows[todo] = out[name]
            result[OUT_PREFIX + name] = rows
        return result

    def _output_shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Row shape and dtype of every output (learned from one blank image when a whole batch was bad)."""
        if self.shapes is None:
            from fprt.runtime.pipeline import _host

            s = self.embedder.preprocess.size
            out = self.embedder.infer(np.zeros((1, s, s), dtype=np.uint8))
            self.shapes = {k: (_host(v).shape[1:], _host(v).dtype) for k, v in out.items()}
        return self.shapes

    def _maybe_die(self) -> None:
        """Test hook (``FPRT_RAY_KILL_EMBED``): the first call anywhere to create the marker kills its process."""
        if not self.kill_marker:
            return
        try:
            fd = os.open(self.kill_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class RayRunner:
    """``fprt.runtime.pipeline.Runner`` on Ray (see the module docstring).

    ``actors``: size of the actor pool (default: the cluster's CPUs / ``cpus_per_actor``, or its GPUs /
    ``gpus_per_actor`` with ``--device cuda``); ``cpus_per_actor``: CPU threads of each actor's model;
    ``gpus_per_actor``: GPUs requested per actor (default 1 with a CUDA model, else 0);
    ``batches_per_block``: model batches per Ray Data block (default: enough blocks to keep every actor busy);
    ``similarity_engine``: what ``similarity()`` installs (``RaySimilarity``), None = the local reductions.
    """

    actors: int | None = None
    cpus_per_actor: int = 1
    gpus_per_actor: float | None = None
    batches_per_block: int | None = None
    cluster: Any = None
    similarity_engine: Any = None
    name: str = "ray"
    info: dict = None  # filled by a call: what ran where (summary.json's "ray" section)

    def similarity(self):
        import contextlib

        if self.similarity_engine is None:
            return contextlib.nullcontext()
        from fprt.runtime.methods.reductions import use_engine

        @contextlib.contextmanager
        def engine():
            with use_engine(self.similarity_engine):
                yield
            self.info = {**(self.info or {}), "similarity": getattr(self.similarity_engine, "calls", None)}

        return engine()

    def embed(self, paths: Sequence[Path], embedder, *, batch_size: int = 64, workers: int | None = None,
              clock=None, use_cache_index: bool = True, progress: Callable[[int], None] | None = None):
        from fprt.data import BadFile
        from fprt.runtime.backends import BackendSpec
        from fprt.runtime.distributed.cluster import require_ray
        from fprt.runtime.pipeline import Embedded, StageClock

        ray = require_ray()
        clock = clock or StageClock()
        n = len(paths)
        result = Embedded(keys=[None] * n)
        if n == 0:
            return result
        if self.cpus_per_actor < 1:
            raise FprtError(f"cpus_per_actor must be >= 1, got {self.cpus_per_actor}")
        model = embedder.spec if embedder.spec is not None else embedder.model
        gpus = self.gpus_per_actor
        if isinstance(model, BackendSpec):
            model = replace(model, model=str(Path(model.model).absolute()), threads=self.cpus_per_actor)
            if gpus is None:
                gpus = 1.0 if model.device == "cuda" else 0.0
        gpus = gpus or 0.0
        actors = self._pool_size(gpus)
        n_batches = -(-n // batch_size)
        per_block = self.batches_per_block or max(1, min(16, n_batches // (4 * actors)))
        rows = per_block * batch_size
        actors = max(1, min(actors, -(-n // rows)))
        info = {"actors": actors, "cpus_per_actor": self.cpus_per_actor, "gpus_per_actor": gpus,
                "batch_size": batch_size, "block_rows": rows, "images": n}

        import pyarrow as pa

        tables = [pa.table({"index": np.arange(s, min(n, s + rows), dtype=np.int64),
                            "path": [str(Path(p).absolute()) for p in paths[s:s + rows]]})
                  for s in range(0, n, rows)]
        cache_root = str(embedder.cache_root) if (embedder.cache_root and use_cache_index and embedder.cache is not None) else None
        ds = ray.data.from_arrow(tables).map_batches(
            EmbedActor,
            fn_constructor_kwargs=dict(model=model, cache_root=cache_root, model_sha256=embedder.model.model_sha256,
                                       decode_threads=0, kill_marker=os.environ.get(KILL_ENV) or None),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=self.cpus_per_actor,
            num_gpus=gpus or None,
            # Ray Data's actor pools restart a lost actor and retry its batch by default
            # (max_restarts=-1, max_task_retries=-1: ray/data/_internal/execution/operators/
            # actor_pool_map_operator.py); passing them again is deprecated in Ray 2.60.
        )
        t0 = time.perf_counter()
        bad: dict[int, Any] = {}
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            idx = np.asarray(out["index"], dtype=np.int64)
            computed = []
            for j, i in enumerate(idx):
                key = bytes.fromhex(str(out["key"][j])) if out["key"][j] else None
                result.keys[int(i)] = key
                st = str(out["status"][j])
                if st == BAD:
                    bad[int(i)] = BadFile(Path(paths[int(i)]), str(out["reason"][j]))
                elif st == HIT:
                    result.hits.setdefault(key, Path(paths[int(i)]))
                elif st == COMPUTED and key not in result.computed:
                    computed.append(j)
            if computed:
                sel = np.asarray(computed)
                result.add_batch([result.keys[int(idx[j])] for j in computed],
                                 {k[len(OUT_PREFIX):]: v[sel] for k, v in out.items() if k.startswith(OUT_PREFIX)})
            clock.add("read_decode", float(out["t_read_decode"].sum()), len(idx))
            clock.add("infer", float(out["t_infer"].sum()), len(computed))
            clock.add("store", float(out["t_store"].sum()), len(computed))
            if progress is not None:
                progress(len(idx))
        for key in [k for k in result.hits if k in result.computed]:
            del result.hits[key]
        result.bad = [bad[i] for i in sorted(bad)]
        info["wall_s"] = round(time.perf_counter() - t0, 3)
        info["cached_by_workers"] = len(result.computed) if cache_root else 0
        clock.add("ray_embed_wall", time.perf_counter() - t0, n)
        self.info = {**(self.info or {}), "embed": info}
        return result

    def _pool_size(self, gpus: float) -> int:
        if self.actors is not None:
            if self.actors < 1:
                raise FprtError(f"--workers must be >= 1 with --ray, got {self.actors}")
            return int(self.actors)
        if self.cluster is None:
            from fprt.runtime.distributed.cluster import Cluster

            self.cluster = Cluster(address="connected", started_here=False, cpus=0, gpus=0, nodes=0)
            self.cluster.refresh()
        if gpus:
            if self.cluster.gpus < gpus:
                raise FprtError(f"--device cuda: the Ray cluster has {self.cluster.gpus} GPU(s); each embed actor needs {gpus}")
            return max(1, int(self.cluster.gpus // gpus))
        return max(1, self.cluster.cpus // self.cpus_per_actor)
