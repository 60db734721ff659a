"""The streaming loader: ``iter_batches(paths, preprocess)`` decodes and resizes images in a pool and
yields ordered batches with bounded memory.

- Order: batches come in the input's order, always (results are consumed first-in first-out).
- Memory: at most ``prefetch`` images are in flight (decoded or being decoded) plus the batch being
  filled; ``paths`` may be a generator and is read only that far ahead.
- The last, partial batch is yielded, never dropped.
- Pool: threads by default. PIL releases the GIL while it inflates, unfilters and resizes, so on
  the 2-core development VM 2 threads decoded 2000 256×256 PNGs in 1.04 s against 1.43 s for 2
  spawned processes (start-up included) and 1.48 s serially (best of 5, other jobs running). Threads
  also need no ``if __name__ == "__main__"`` guard in the caller's script and copy nothing between
  processes. ``executor="process"`` (spawned, never forked) is there for decoders that hold the GIL
  or machines so oversubscribed that the GIL hand-over stalls; ``workers=0`` decodes serially in the
  calling thread.
- Bad files: ``on_error="stop"`` raises ``BadFilesError`` on the first bad file met; ``"skip"`` leaves
  it out and hands it to ``on_bad``. To stop *before* any model work, screen the paths first with
  ``fprt.data.screen_files``. (``fprt score`` does neither: it reads each file once with
  ``fprt.runtime.pipeline.load_file`` and applies the stop/skip rule once every file was seen.)
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from fprt.data.files import image_id
from fprt.errors import DataError

EXECUTORS = ("thread", "process")


@dataclass(frozen=True)
class Batch:
    """``pixels`` (N×S×S uint8, C-contiguous) of the images at ``paths``; ``indices`` are their positions in the input."""

    paths: list[Path]
    ids: list[str]
    pixels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def default_workers() -> int:
    """One worker per CPU the process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


# ---------------------------------------------------------------------------------------------- the ordered pool
def _chunks(items: Iterable, size: int) -> Iterator[list[tuple[int, Any]]]:
    it = enumerate(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _progress_hook(progress, total: int | None, desc: str | None):
    """(update(n), close()) for ``progress``: False/None → nothing, True → a tqdm bar, callable → called with n."""
    if not progress:
        return (lambda n: None), (lambda: None)
    if callable(progress):
        return progress, (lambda: None)
    from fprt.progress import progress as bar_factory

    bar = bar_factory(total=total, desc=desc, unit="img")
    return bar.update, bar.close


def _map_ordered(
    fn: Callable,
    items: Iterable,
    *,
    workers: int | None,
    args: tuple = (),
    chunk_size: int = 8,
    prefetch: int | None = None,
    executor: str = "thread",
    progress: bool | Callable[[int], None] = False,
    desc: str | None = None,
) -> Iterator[Any]:
    """``fn(chunk, *args)`` for consecutive chunks of ``[(index, item), ...]``, results yielded in input order.

    At most ``prefetch`` items (rounded up to whole chunks, at least two chunks per worker) are
    submitted and not yet consumed, so ``items`` may be an endless generator.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    total = len(items) if hasattr(items, "__len__") else None
    update, close = _progress_hook(progress, total, desc)
    chunks = _chunks(items, chunk_size)
    try:
        if workers == 0:
            for chunk in chunks:
                result = fn(chunk, *args)
                update(len(chunk))
                yield result
            return
        max_pending = max(2 * workers, -(-(prefetch or 0) // chunk_size))
        pool = _make_pool(executor, workers)
        pending: deque = deque()
        try:
            for chunk in itertools.islice(chunks, max_pending):
                pending.append((len(chunk), pool.submit(fn, chunk, *args)))
            while pending:
                n, future = pending.popleft()
                result = future.result()
                nxt = next(chunks, None)
                if nxt is not None:
                    pending.append((len(nxt), pool.submit(fn, nxt, *args)))
                update(n)
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        close()


def _make_pool(executor: str, workers: int):
    if executor == "thread":
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fprt-decode")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold torch/OpenMP threads that a fork would copy half-way
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


# ---------------------------------------------------------------------------------------------- batches
def load_image(path: str | os.PathLike, preprocess=None, *, window=None) -> np.ndarray:
    """Decode ``path`` and, with a ``Preprocess``, resize it to ``size``×``size`` uint8."""
    from fprt.data.decode import decode_image

    image = decode_image(path, window=window)
    return preprocess.resize_uint8(image) if preprocess is not None else image


def _load_chunk(chunk: list[tuple[int, Path]], preprocess, window) -> list[tuple[int, Path, np.ndarray | None, str | None]]:
    from fprt.data.badfiles import reason_of

    out = []
    for index, path in chunk:
        try:
            out.append((index, path, load_image(path, preprocess, window=window), None))
        except DataError as exc:
            out.append((index, path, None, reason_of(path, exc)))
    return out


def iter_batches(
    paths: Iterable[str | os.PathLike],
    preprocess=None,
    batch_size: int = 64,
    workers: int | None = None,
    on_error: str = "stop",
    *,
    on_bad: Callable | None = None,
    window=None,
    executor: str = "thread",
    chunk_size: int = 8,
    prefetch: int | None = None,
    progress: bool | Callable[[int], None] = False,
    desc: str | None = None,
) -> Iterator[Batch]:
    """Yield ``Batch``es of decoded, resized images in the order of ``paths``.

    - ``preprocess``: a ``fprt.preprocess.Preprocess`` (its ``resize_uint8`` runs in the workers);
      None keeps the decoded size, and then every image must have the same size.
    - ``workers``: pool size (default: CPUs, at most 8); 0 decodes in the calling thread.
    - ``on_error``: ``"stop"`` raises ``BadFilesError`` at the first bad file; ``"skip"`` leaves it out
      and calls ``on_bad(BadFile)``.
    - ``prefetch``: images in flight at most (default ``2 * batch_size``, and at least two chunks
      of ``chunk_size`` per worker).
    - ``progress``: True for a tqdm bar on stderr (labelled ``desc``), or a callable receiving the
      number of images done.
    """
    from fprt.data.badfiles import ON_ERROR, BadFile, BadFilesError

    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if window is not None:
        from fprt.data.decode import _check_options

        window = _check_options(window, "uint8")
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"paths must be an iterable of paths, not the single path {paths!r}")
    items = [Path(p) for p in paths] if hasattr(paths, "__len__") else _as_paths(paths)
    prefetch = 2 * batch_size if prefetch is None else prefetch
    buf: list[tuple[int, Path, np.ndarray]] = []
    results = _map_ordered(
        _load_chunk, items, workers=workers, args=(preprocess, window), chunk_size=chunk_size,
        prefetch=prefetch, executor=executor, progress=progress, desc=desc or "decode",
    )
    try:
        for chunk in results:
            for index, path, pixels, reason in chunk:
                if reason is not None:
                    bad = BadFile(path, reason)
                    if on_error == "stop":
                        raise BadFilesError([bad], when="while loading (screen the files first with fprt.data.screen_files to stop before any model work)")
                    if on_bad is not None:
                        on_bad(bad)
                    continue
                buf.append((index, path, pixels))
                if len(buf) == batch_size:
                    yield _make_batch(buf)
                    buf = []
        if buf:
            yield _make_batch(buf)
    finally:
        results.close()


def _as_paths(paths: Iterable) -> Iterator[Path]:
    for p in paths:
        yield Path(p)


def _make_batch(buf: list[tuple[int, Path, np.ndarray]]) -> Batch:
    shape = buf[0][2].shape
    for _, path, pixels in buf:
        if pixels.shape != shape:
            raise DataError(
                f"{path}: image of shape {pixels.shape} in a batch of {shape} images; pass a Preprocess to resize them to one size"
            )
    pixels = np.ascontiguousarray(np.stack([p for _, _, p in buf]))
    return Batch(
        paths=[p for _, p, _ in buf],
        ids=[image_id(p) for _, p, _ in buf],
        pixels=pixels,
        indices=np.fromiter((i for i, _, _ in buf), dtype=np.int64, count=len(buf)),
    )
