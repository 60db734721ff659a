"""The scoring pipeline: each file read once → hash → cache lookup → decode → infer → store, overlapping.

    embedder = Embedder(backend, cache_root)              # a model + its embedding cache (a Ray actor holds one)
    got = embed_files(paths, embedder, batch_size=64)     # every file read once; rows of the misses computed
    got.keys[i], got.bad, got.computed_rows(), got.hits  # per path: content key; bad files; new rows; cached keys

``load_file(path, preprocess, is_cached)`` is the per-file function every runner uses (the local
stages and the Ray actors): it reads the file's bytes once, hashes them (SHA-256, the cache key),
asks the cache whether the key is known, and only on a miss decodes the same bytes from memory
(the full decode is the bad-file check: a file that decodes cannot fail later). No separate hash
or screening pass reads the files again. A method's pixel features (``Method.pixel_features``, e.g.
the generator fingerprints of ``--method auto``) are computed there too, from the same decoded
image, and cached as extra outputs of the ``Embedder`` (the local runner; on Ray the method
computes them itself).

``embed_files`` runs three stages in threads joined by bounded queues:

1. decode — a pool of ``load_file`` workers (``fprt.data.loader._map_ordered``: ordered, at most
   ``prefetch`` images in flight) → batches of the misses' uint8 pixels, normalised for the model;
2. infer  — ``Embedder.infer_prepared`` (ONNX Runtime / torch release the GIL while they compute);
3. store  — writes each batch to the cache (one shard, atomically) and keeps its rows.

A stage blocks when the queue after it is full, so memory stays bounded and the slowest stage sets
the pace. Bad files do not stop the stages: they are collected (``Embedded.bad``) and the caller
applies the stop/skip rule once every file has been seen, so ``--on-error stop`` lists every bad
file while every good file's embedding is already in the cache. ``StageClock`` records per stage
the busy seconds and items (``read``, ``hash``, ``decode`` are summed over the pool's workers).
On CUDA the computed rows are torch tensors on the device (the cache gets a host copy).
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
def hash_files(paths: Sequence[Path], workers: int = 2) -> list[bytes]:
    """32-byte SHA-256 digests of the files' contents, in order (``fprt.data.files.file_digest``; hashlib
    releases the GIL). ``fprt score`` hashes in its one read (``load_file``); this is for tools and benchmarks."""
    from fprt.data.files import file_digest

    if workers <= 1 or len(paths) < 64:
        return [file_digest(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fprt-hash") as pool:
        return list(pool.map(file_digest, paths, chunksize=64))


# ---------------------------------------------------------------------------------------------- embedder
class Embedder:
    """A model (or classical feature extractor) plus its embedding cache.

    Plain object, built once and called per batch: what a Ray actor holds (``Embedder(spec, root)``
    with a ``BackendSpec`` loads the model in the actor's process).
    """

    def __init__(self, model, cache_root: str | Path | None = None, *, spec=None, pixel_features=None) -> None:
        from fprt.runtime.backends import BackendSpec

        # spec: the picklable recipe of the model (what a worker process / Ray actor loads); the
        # classical feature extractors are small plain objects and travel as they are
        self.spec = model if isinstance(model, BackendSpec) else spec
        self.model = model.load() if isinstance(model, BackendSpec) else model
        self.cache_root = Path(cache_root) if cache_root else None
        self.model_outputs: tuple[str, ...] = tuple(self.model.image_outputs)
        # pixel features (``fprt.runtime.evidence.fingerprint.PixelFeatureSpec``) computed in the decode stage
        # from the same decoded image, cached beside the model's outputs: extra outputs, always host arrays
        self.pixel_features = pixel_features
        self.outputs: tuple[str, ...] = self.model_outputs + (tuple(pixel_features.outputs) if pixel_features else ())
        self.preprocess = self.model.meta.preprocess
        self.device = getattr(self.model, "device", "cpu")
        cacheable = getattr(self.model, "cacheable", True)
        self.cache = EmbeddingCache(cache_root, self.model.model_sha256, self.outputs) if cache_root and cacheable else None

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.cache is None:
            return np.zeros(len(keys), dtype=bool), {}
        return self.cache.lookup(keys)

    def has(self, key: bytes) -> bool:
        """True when the cache holds every output of ``key`` (an in-memory index look-up, no I/O)."""
        return self.cache is not None and self.cache.has(key)

    def has_model_outputs(self, key: bytes) -> bool:
        """True when the cache holds the model's outputs of ``key`` (its pixel features may be missing)."""
        return self.cache is not None and self.cache.has(key, self.model_outputs)

    def prepare(self, pixels: np.ndarray):
        """The model's inputs for a batch of pixels (normalisation), done in the decode stage."""
        fn = getattr(self.model, "prepare_inputs", None)
        return fn(pixels) if fn is not None else pixels

    def infer(self, pixels: np.ndarray) -> dict[str, Any]:
        out = self.model.infer(pixels)
        return {name: out[name] for name in self.model_outputs}

    def infer_prepared(self, prepared) -> dict[str, Any]:
        fn = getattr(self.model, "infer_prepared", None)
        out = fn(prepared) if fn is not None else self.model.infer(prepared)
        return {name: out[name] for name in self.model_outputs}

    def store(self, keys: list[bytes], outputs: dict[str, Any]) -> None:
        if self.cache is None:
            return
        try:
            self.cache.store(keys, {k: _host(v) for k, v in outputs.items()})
        except OSError as exc:  # full disk, folder made read-only mid-run: the run goes on without the cache
            import logging

            logging.getLogger("fprt.runtime").warning(
                "fprt cache: cannot write to %s (%s); the run goes on without the cache", self.cache_root,
                exc.strerror or exc)
            self.cache = None

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


# ---------------------------------------------------------------------------------------------- one file
@dataclass(frozen=True)
class FileResult:
    """What ``load_file`` made of one file: its key, and pixels (a miss), nothing (a hit) or why it is bad."""

    key: bytes | None  # SHA-256 of the content; None when the file could not be read
    pixels: np.ndarray | None = None  # size×size uint8, only for a miss that decoded
    bad: Any = None  # fprt.data.BadFile
    hit: bool = False
    seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)  # read, hash, decode
    features: dict[str, np.ndarray] | None = None  # a miss's pixel features (``pixel_features`` given)
    features_s: float = 0.0


def load_file(path: Path, preprocess=None, is_cached: Callable[[bytes], bool] | None = None, *, window=None,
              pixel_features=None) -> FileResult:
    """Read ``path`` once, hash it, look the key up with ``is_cached``, decode the bytes on a miss; with
    ``pixel_features`` (a ``PixelFeatureSpec``) a miss also gets them, computed from the same decoded image."""
    from fprt.data.badfiles import BadFile, reason_of
    from fprt.data.decode import decode_image, read_file_bytes
    from fprt.errors import DataError

    path = path if isinstance(path, Path) else Path(path)  # a Path already from every runner: parsed once
    t0 = time.perf_counter()
    try:
        data = read_file_bytes(path)
    except DataError as exc:
        return FileResult(None, bad=BadFile(path, reason_of(path, exc)), seconds=(time.perf_counter() - t0, 0.0, 0.0))
    t1 = time.perf_counter()
    key = hashlib.sha256(data).digest()
    t2 = time.perf_counter()
    if is_cached is not None and is_cached(key):
        return FileResult(key, hit=True, seconds=(t1 - t0, t2 - t1, 0.0))
    try:
        image = decode_image(path, window=window, data=data)
        pixels = preprocess.resize_uint8(image) if preprocess is not None else image
    except DataError as exc:
        return FileResult(key, bad=BadFile(path, reason_of(path, exc)), seconds=(t1 - t0, t2 - t1, time.perf_counter() - t2))
    t3 = time.perf_counter()
    features = pixel_features.compute(image, path) if pixel_features is not None else None
    return FileResult(key, pixels=pixels, seconds=(t1 - t0, t2 - t1, t3 - t2), features=features,
                      features_s=time.perf_counter() - t3)


def _load_chunk(chunk: list[tuple[int, Path]], preprocess, is_cached, pixel_features=None) -> list[tuple[int, FileResult]]:
    return [(i, load_file(p, preprocess, is_cached, pixel_features=pixel_features)) for i, p in chunk]


# ---------------------------------------------------------------------------------------------- the result
@dataclass
class Embedded:
    """What the embed step found for a list of paths (local or on Ray; see ``Runner``)."""

    keys: list[bytes | None]  # per input path: its content key (None: unreadable)
    bad: list = field(default_factory=list)  # BadFile, in input order
    hits: dict[bytes, Path] = field(default_factory=dict)  # keys the cache already held (first path of each)
    computed: dict[bytes, int] = field(default_factory=dict)  # key → row in computed_rows()
    parts: dict[str, list] = field(default_factory=dict)  # output → batch arrays, in computed order

    def computed_rows(self) -> dict[str, Any]:
        return {name: _concat(p) for name, p in self.parts.items()}

    def add_batch(self, keys: list[bytes], out: dict[str, Any]) -> None:
        base = len(self.computed)
        for j, key in enumerate(keys):
            self.computed[key] = base + j
        for name, rows in out.items():
            self.parts.setdefault(name, []).append(rows)


def _concat(parts: list):
    if not parts:
        return np.zeros((0,), np.float32)
    if hasattr(parts[0], "detach"):
        import torch

        return torch.cat(parts) if len(parts) > 1 else parts[0]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------------------------------------- the stages
def embed_files(
    paths: Sequence[Path],
    embedder: Embedder,
    *,
    batch_size: int = 64,
    workers: int | None = None,
    clock: StageClock | None = None,
    queue_depth: int = 3,
    use_cache_index: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Embedded:
    """Read, hash, look up, decode, infer and store ``paths`` with the stages overlapping (module docstring)."""
    from fprt.data.loader import _map_ordered

    clock = clock or StageClock()
    n = len(paths)
    result = Embedded(keys=[None] * n)
    if n == 0:
        return result
    is_cached = embedder.has if (use_cache_index and embedder.cache is not None) else None
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

    def emit(buf: list[FileResult]) -> bool:
        t0 = time.perf_counter()
        prepared = embedder.prepare(np.ascontiguousarray(np.stack([fr.pixels for fr in buf])))
        features = ({name: np.stack([fr.features[name] for fr in buf]) for name in buf[0].features}
                    if buf[0].features is not None else {})
        clock.add("prepare", time.perf_counter() - t0, len(buf))
        return put(q_decoded, ([fr.key for fr in buf], prepared, features))

    def store_features(frs: list[FileResult]) -> None:
        with clock.timed("store", len(frs)):
            embedder.store([fr.key for fr in frs], {n: np.stack([fr.features[n] for fr in frs]) for n in frs[0].features})

    def decode_stage():
        files = None
        try:
            seen: set[bytes] = set()
            buf: list[FileResult] = []
            only_features: list[FileResult] = []
            files = _map_ordered(_load_chunk, [Path(p) for p in paths], workers=workers,
                                 args=(embedder.preprocess, is_cached, embedder.pixel_features), chunk_size=8,
                                 prefetch=2 * batch_size)
            for chunk in files:
                for i, fr in chunk:
                    result.keys[i] = fr.key
                    clock.add("read", fr.seconds[0], 1)
                    clock.add("hash", fr.seconds[1], 1 if fr.key is not None else 0)
                    if fr.bad is not None:
                        result.bad.append(fr.bad)
                    elif fr.hit or fr.key in seen:
                        if fr.hit and fr.key not in seen:
                            result.hits.setdefault(fr.key, Path(paths[i]))
                    else:
                        clock.add("decode", fr.seconds[2], 1)
                        if fr.features is not None:
                            clock.add("pixel_features", fr.features_s, 1)
                        seen.add(fr.key)
                        if fr.features is not None and embedder.has_model_outputs(fr.key):
                            # only the pixel features were missing: cache them, the model's rows are a hit
                            result.hits.setdefault(fr.key, Path(paths[i]))
                            only_features.append(fr)
                            if len(only_features) == batch_size:
                                store_features(only_features)
                                only_features = []
                            if progress is not None:
                                progress(1)
                            continue
                        buf.append(fr)
                        if len(buf) == batch_size:
                            if not emit(buf):
                                return
                            buf = []
                        continue  # counted when stored
                    if progress is not None:
                        progress(1)  # hits, copies and bad files are done now
            if buf:
                emit(buf)
            if only_features:
                store_features(only_features)
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
            stop.set()
        finally:
            if files is not None:
                files.close()  # shuts the decode pool down now, not at garbage collection
            put(q_decoded, _DONE)

    def infer_stage():
        try:
            while True:
                t0 = time.perf_counter()
                batch = get(q_decoded)
                clock.add("infer_wait_input", time.perf_counter() - t0)
                if batch is _DONE:
                    break
                keys, prepared, features = batch
                with clock.timed("infer", len(keys)):
                    out = embedder.infer_prepared(prepared)
                out.update(features)
                if not put(q_inferred, (keys, out)):
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
            keys, out = item
            with clock.timed("store", len(keys)):
                embedder.store(keys, out)
                result.add_batch(keys, out)
            if progress is not None:
                progress(len(keys))
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set() if errors else None
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    # a key the pool saw as cached that this run computed anyway (another copy of the file came first)
    for key in [k for k in result.hits if k in result.computed]:
        del result.hits[key]
    return result


# ---------------------------------------------------------------------------------------------- the seam
class Runner:
    """Where the embed step and the similarity step run: the one seam between ``fprt.runtime.score``
    and a distributed runner (``fprt.runtime.distributed.RayRunner`` implements the same two calls).

    ``embed(paths, embedder, ...)`` → ``Embedded`` (every file read once by ``load_file``);
    ``similarity()`` → a context manager the scoring method runs in (e.g. ``reductions.use_engine``).
    ``info`` (a dict or None) goes to summary.json under the runner's ``name``.
    """

    name = "local"
    info: dict | None = None
    computes_pixel_features = True  # a method's pixel features come from the one decode (``load_file``)

    def embed(self, paths: Sequence[Path], embedder: Embedder, *, batch_size: int = 64, workers: int | None = None,
              clock: StageClock | None = None, use_cache_index: bool = True,
              progress: Callable[[int], None] | None = None) -> Embedded:
        return embed_files(paths, embedder, batch_size=batch_size, workers=workers, clock=clock,
                           use_cache_index=use_cache_index, progress=progress)

    def similarity(self):
        import contextlib

        return contextlib.nullcontext()
