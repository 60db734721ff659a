"""The scoring pipeline: hash → cache lookup → decode → infer → store, as overlapping stages.

    keys = hash_files(paths)                        # content SHA-256 of every file (thread pool)
    embedder = Embedder(backend, cache_root)        # a model + its embedding cache (a Ray actor can hold one)
    hit, rows = embedder.lookup(keys)               # what earlier (or concurrent) runs already computed
    out = run_stages(miss_paths, miss_keys, embedder, clock=clock)

``run_stages`` runs three stages in threads joined by bounded queues:

1. decode — ``fprt.data.iter_batches`` (its own pool of decode threads) → batches of uint8 pixels;
2. infer  — ``Embedder.infer`` (ONNX Runtime / torch release the GIL while they compute);
3. store  — writes each batch to the cache (one shard, atomically) and into the result arrays.

A stage blocks when the queue after it is full, so memory stays bounded and the slowest stage sets
the pace. ``StageClock`` records, per stage, the seconds it was busy and the images it handled; the
time the infer stage waited for decoded input says whether decoding kept up. On CUDA the result
arrays are torch tensors on the device: embeddings stay on the GPU for the similarity step (the
cache gets a host copy).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fprt.runtime.cache import EmbeddingCache

_DONE = object()


# ---------------------------------------------------------------------------------------------- timings
@dataclass
class StageClock:
    """Busy seconds and item counts per stage (thread-safe), plus the wall clock of the whole run."""

    busy: dict[str, float] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float, items: int = 0) -> None:
        with self._lock:
            self.busy[stage] = self.busy.get(stage, 0.0) + seconds
            self.items[stage] = self.items.get(stage, 0) + items

    def timed(self, stage: str, items: int = 0):
        clock = self

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, *exc):
                clock.add(stage, time.perf_counter() - self.t0, items)

        return _T()

    def rate(self, stage: str) -> float | None:
        s, n = self.busy.get(stage, 0.0), self.items.get(stage, 0)
        return n / s if s > 0 and n else None

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {"seconds": round(self.busy[name], 4), "items": self.items.get(name, 0),
                   "items_per_s": round(self.rate(name), 2) if self.rate(name) else None}
            for name in self.busy
        }


# ---------------------------------------------------------------------------------------------- hashing
def _digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def hash_files(paths: Sequence[Path], workers: int = 2) -> list[bytes]:
    """32-byte SHA-256 digests of the files' contents, in order (hashlib releases the GIL)."""
    if workers <= 1 or len(paths) < 64:
        return [_digest(Path(p)) for p in paths]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fprt-hash") as pool:
        return list(pool.map(_digest, [Path(p) for p in paths], chunksize=64))


# ---------------------------------------------------------------------------------------------- embedder
class Embedder:
    """A model (or classical feature extractor) plus its embedding cache.

    Plain object, built once and called per batch: what a Ray actor holds (``Embedder(spec, root)``
    with a ``BackendSpec`` loads the model in the actor's process).
    """

    def __init__(self, model, cache_root: str | Path | None = None, *, spec=None) -> None:
        from fprt.runtime.backends import BackendSpec

        # spec: the picklable recipe of the model (what a worker process / Ray actor loads); the
        # classical feature extractors are small plain objects and travel as they are
        self.spec = model if isinstance(model, BackendSpec) else spec
        self.model = model.load() if isinstance(model, BackendSpec) else model
        self.cache_root = Path(cache_root) if cache_root else None
        self.outputs: tuple[str, ...] = tuple(self.model.image_outputs)
        self.preprocess = self.model.meta.preprocess
        self.device = getattr(self.model, "device", "cpu")
        cacheable = getattr(self.model, "cacheable", True)
        self.cache = EmbeddingCache(cache_root, self.model.model_sha256, self.outputs) if cache_root and cacheable else None

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.cache is None:
            return np.zeros(len(keys), dtype=bool), {}
        return self.cache.lookup(keys)

    def prepare(self, pixels: np.ndarray):
        """The model's inputs for a batch of pixels (normalisation), done in the decode stage."""
        fn = getattr(self.model, "prepare_inputs", None)
        return fn(pixels) if fn is not None else pixels

    def infer(self, pixels: np.ndarray) -> dict[str, Any]:
        out = self.model.infer(pixels)
        return {name: out[name] for name in self.outputs}

    def infer_prepared(self, prepared) -> dict[str, Any]:
        fn = getattr(self.model, "infer_prepared", None)
        out = fn(prepared) if fn is not None else self.model.infer(prepared)
        return {name: out[name] for name in self.outputs}

    def store(self, keys: list[bytes], outputs: dict[str, Any]) -> None:
        if self.cache is not None:
            self.cache.store(keys, {k: _host(v) for k, v in outputs.items()})

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data style: ``{"pixels": N×S×S uint8, "key": N×32 uint8}`` → the outputs (host), cached."""
        out = self.infer(batch["pixels"])
        keys = [bytes(k) for k in np.asarray(batch["key"], dtype=np.uint8)]
        self.store(keys, out)
        return {k: _host(v) for k, v in out.items()}


def _host(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ---------------------------------------------------------------------------------------------- the stages
@dataclass
class StageResult:
    outputs: dict[str, Any]  # name → N×... rows for the input paths (zeros where skipped)
    done: np.ndarray  # bool per input path: False for files skipped as bad while loading
    bad: list = field(default_factory=list)


def run_stages(
    paths: Sequence[Path],
    keys: Sequence[bytes],
    embedder: Embedder,
    *,
    batch_size: int = 64,
    workers: int | None = None,
    on_error: str = "stop",
    clock: StageClock | None = None,
    queue_depth: int = 3,
    progress: Callable[[int], None] | None = None,
) -> StageResult:
    """Decode, infer and store ``paths`` with the three stages overlapping; rows come back in input order."""
    from fprt.data import iter_batches

    clock = clock or StageClock()
    n = len(paths)
    result = StageResult(outputs={}, done=np.zeros(n, dtype=bool))
    if n == 0:
        return result
    q_decoded: queue.Queue = queue.Queue(maxsize=queue_depth)
    q_inferred: queue.Queue = queue.Queue(maxsize=queue_depth)
    stop = threading.Event()
    errors: list[BaseException] = []

    def put(q: queue.Queue, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(q: queue.Queue):
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return _DONE

    def decode_stage():
        batches = None
        try:
            batches = iter_batches(list(paths), embedder.preprocess, batch_size, workers, on_error,
                                   on_bad=result.bad.append)
            while True:
                t0 = time.perf_counter()
                batch = next(batches, None)
                if batch is None:
                    break
                prepared = embedder.prepare(batch.pixels)
                clock.add("decode", time.perf_counter() - t0, len(batch))
                if not put(q_decoded, (batch.indices, prepared)):
                    break
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
            stop.set()
        finally:
            if batches is not None:
                batches.close()  # shuts the decode pool down now, not at garbage collection
            put(q_decoded, _DONE)

    def infer_stage():
        try:
            while True:
                t0 = time.perf_counter()
                batch = get(q_decoded)
                clock.add("infer_wait_input", time.perf_counter() - t0)
                if batch is _DONE:
                    break
                indices, prepared = batch
                with clock.timed("infer", len(indices)):
                    out = embedder.infer_prepared(prepared)
                if not put(q_inferred, (indices, out)):
                    break
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            put(q_inferred, _DONE)

    threads = [threading.Thread(target=decode_stage, name="fprt-decode-stage", daemon=True),
               threading.Thread(target=infer_stage, name="fprt-infer-stage", daemon=True)]
    for t in threads:
        t.start()
    try:
        while True:
            item = get(q_inferred)
            if item is _DONE:
                break
            indices, out = item
            with clock.timed("store", len(indices)):
                embedder.store([keys[i] for i in indices], out)
                _fill(result.outputs, out, indices, n)
                result.done[indices] = True
            if progress is not None:
                progress(len(indices))
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set() if errors else None
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return result


def _fill(store: dict[str, Any], out: dict[str, Any], indices: np.ndarray, n: int) -> None:
    for name, rows in out.items():
        if name not in store:
            if hasattr(rows, "detach"):
                import torch

                store[name] = torch.zeros((n, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
            else:
                store[name] = np.zeros((n, *np.shape(rows)[1:]), dtype=np.asarray(rows).dtype)
        if hasattr(rows, "detach"):
            import torch

            store[name][torch.as_tensor(indices, device=rows.device)] = rows
        else:
            store[name][indices] = rows
