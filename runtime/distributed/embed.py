"""Decode + embed on Ray Data: the file list goes in, embeddings come out, the cache is written by the workers.

``RayEmbedStage`` is a drop-in for ``fprt.runtime.pipeline.run_stages`` (same call, same
``StageResult``), handed to ``fprt.runtime.score(..., stages=...)``:

1. the driver builds a dataset of the FILE LIST (``index``, ``path``, ``key`` = content SHA-256 the
   driver already computed) — no image is read by the driver;
2. ``map_batches(EmbedActor, compute=ActorPoolStrategy(size=N), batch_size=B, num_cpus=..., num_gpus=...)``:
   each actor loads the model once in ``__init__`` (ONNX Runtime session / TensorRT runner / torch
   module, from the picklable ``BackendSpec``) and in ``__call__`` decodes + preprocesses its batch
   of paths with the data layer (``fprt.data.iter_batches``, exactly as a local run), runs the model
   and writes the batch into the same content-hash cache as a local run (one atomic shard per batch);
3. the driver streams the results back (per image: its embedding rows, a few bytes of status and
   timings) and puts them in input order.

Batches are the local run's batches: the dataset is built from blocks of whole ``B``-image batches
cut at the same places as ``run_stages`` cuts them (images ``[j·B, (j+1)·B)``), so the model sees
the same inputs batch for batch and the embeddings are bit-identical to a local run's.

Failures: a worker process lost mid-run (killed, OOM, node gone) is restarted by Ray
(``max_restarts=-1``) and its batch retried (``max_task_retries=-1``); batches it had stored stay in the
cache, the retried one is computed again — same bytes, so the outputs do not change. A bad image
follows ``on_error`` as in a local run: ``stop`` raises ``BadFilesError`` naming it, ``skip`` leaves
it out and reports it.
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
        from fprt.data import iter_batches
        from fprt.runtime.pipeline import _host

        t0 = time.perf_counter()
        paths = [str(p) for p in batch["path"]]
        n = len(paths)
        reasons = np.full(n, "", dtype=object)
        bad: list = []
        pixels, decoded = None, np.zeros(0, dtype=np.int64)
        for b in iter_batches(paths, self.embedder.preprocess, n, self.decode_threads, "skip", on_bad=bad.append):
            pixels, decoded = b.pixels, b.indices
        for bf in bad:
            reasons[paths.index(str(bf.path))] = bf.reason
        t1 = time.perf_counter()
        out = {k: _host(v) for k, v in self.embedder.infer(pixels).items()} if len(decoded) else {}
        t2 = time.perf_counter()
        self._maybe_die()
        if len(decoded):
            keys = [bytes.fromhex(str(batch["key"][i])) for i in decoded]
            self.embedder.store(keys, out)
            if self.shapes is None:
                self.shapes = {k: (v.shape[1:], v.dtype) for k, v in out.items()}
        t3 = time.perf_counter()
        ok = np.zeros(n, dtype=bool)
        ok[decoded] = True
        result: dict[str, np.ndarray] = {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "ok": ok,
            "reason": reasons,
            "t_decode": np.full(n, (t1 - t0) / n),
            "t_infer": np.full(n, (t2 - t1) / n),
            "t_store": np.full(n, (t3 - t2) / n),
        }
        for name, (shape, dtype) in self._output_shapes().items():
            rows = np.zeros((n, *shape), dtype=dtype)
            if len(decoded):
                rows[decoded] = out[name]
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
class RayEmbedStage:
    """``run_stages`` on Ray Data (see the module docstring).

    ``actors``: size of the actor pool (default: the cluster's CPUs / ``cpus_per_actor``, or its GPUs /
    ``gpus_per_actor`` with ``--device cuda``); ``cpus_per_actor``: CPU threads of each actor's model;
    ``gpus_per_actor``: GPUs requested per actor (default 1 with a CUDA model, else 0);
    ``batches_per_block``: model batches per Ray Data block (default: enough blocks to keep every actor busy).
    """

    actors: int | None = None
    cpus_per_actor: int = 1
    gpus_per_actor: float | None = None
    batches_per_block: int | None = None
    cluster: Any = None
    info: dict = None  # filled by a call: what ran where (summary.json's "ray" section)

    def __call__(self, paths: Sequence[Path], keys: Sequence[bytes], embedder, *, batch_size: int = 64,
                 workers: int | None = None, on_error: str = "stop", clock=None, queue_depth: int = 3,
                 progress: Callable[[int], None] | None = None):
        from fprt.data import BadFile, BadFilesError
        from fprt.runtime.backends import BackendSpec
        from fprt.runtime.distributed.cluster import require_ray
        from fprt.runtime.pipeline import StageClock, StageResult

        ray = require_ray()
        clock = clock or StageClock()
        n = len(paths)
        result = StageResult(outputs={}, done=np.zeros(n, dtype=bool))
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
        self.info = {"actors": actors, "cpus_per_actor": self.cpus_per_actor, "gpus_per_actor": gpus,
                     "batch_size": batch_size, "block_rows": rows, "images": n}

        import pyarrow as pa

        tables = [
            pa.table({"index": np.arange(s, min(n, s + rows), dtype=np.int64),
                      "path": [str(Path(p).absolute()) for p in paths[s:s + rows]],
                      "key": [bytes(k).hex() for k in keys[s:s + rows]]})
            for s in range(0, n, rows)
        ]
        ds = ray.data.from_arrow(tables)
        ds = ds.map_batches(
            EmbedActor,
            fn_constructor_kwargs=dict(model=model, cache_root=str(embedder.cache_root) if embedder.cache_root else None,
                                       model_sha256=embedder.model.model_sha256,
                                       decode_threads=self.cpus_per_actor if self.cpus_per_actor > 1 else 0,
                                       kill_marker=os.environ.get(KILL_ENV) or None),
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
        bad: list = []
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            idx = np.asarray(out["index"], dtype=np.int64)
            ok = np.asarray(out["ok"], dtype=bool)
            for i in idx[~ok]:
                reason = str(out["reason"][int(np.flatnonzero(idx == i)[0])])
                bad.append(BadFile(Path(paths[int(i)]), reason))
            if bad and on_error == "stop":
                raise BadFilesError(bad, when="while loading on the Ray workers (screen the files first with "
                                              "fprt.data.screen_files to stop before any model work)")
            good = idx[ok]
            for key, rows_ in out.items():
                if not key.startswith(OUT_PREFIX):
                    continue
                name = key[len(OUT_PREFIX):]
                if name not in result.outputs:
                    result.outputs[name] = np.zeros((n, *rows_.shape[1:]), dtype=rows_.dtype)
                result.outputs[name][good] = rows_[ok]
            result.done[good] = True
            k = int(ok.sum())
            clock.add("decode", float(out["t_decode"].sum()), len(idx))
            clock.add("infer", float(out["t_infer"].sum()), k)
            clock.add("store", float(out["t_store"].sum()), k)
            if progress is not None:
                progress(len(idx))
        result.bad = bad
        self.info["wall_s"] = round(time.perf_counter() - t0, 3)
        self.info["cached_by_workers"] = int(result.done.sum()) if embedder.cache is not None else 0
        clock.add("ray_embed_wall", time.perf_counter() - t0, n)
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
