"""Drawing the planned images and writing the dataset folder.

The whole dataset is built in a hidden sibling folder (``.OUT.partial-<pid>-<hex>``) and renamed to
OUT only when every file, ``test/labels.csv``, ``sources.csv`` and ``demo.json`` are written, so a
killed run never leaves a half-written OUT (a leftover ``.partial`` folder of a dead process is
removed by the next run). Each file is written atomically with ``fprt.io``. Images are drawn in a
pool of worker processes for big sets (forked where safe, see ``_start_method``); every image has
its own random stream, so the bytes do not depend on the number of workers or how they start.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import FprtError
from ..io import atomic_write_bytes, atomic_write_text
from .generators import synthesize
from .phantom import SIZE, render
from .plan import Job
from .scanner import acquire, quantize


def draw(job: Job, size: int = SIZE) -> np.ndarray:
    """The uint8 size×size image a job describes."""
    rng = np.random.default_rng(job.noise_seed)
    if job.generator is None:
        sc = job.scanner
        d = acquire(render(job.sources[0]), sc, rng)
    else:
        sc = job.generator.restyle(job.scanner)
        kw = {}
        if job.blend is not None:
            kw = {"blend_split": job.blend[0], "blend_width": job.blend[1], "blend_vertical": job.blend[2]}
        d = synthesize(job.sources, job.geometries, job.scanner, job.generator, rng, **kw)
    if size != SIZE:
        d = np.asarray(Image.fromarray(np.ascontiguousarray(d, np.float32)).resize((size, size), Image.Resampling.BICUBIC),
                       dtype=np.float32).copy()
    return quantize(d, sc)


def encode_png(img: np.ndarray, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img, np.uint8)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


# ------------------------------------------------------------------------------ worker processes
_CTX: dict = {}


def _single_thread_blas():
    """Limit BLAS to one thread: the matrices drawn here are tiny, and a multi-threaded OpenBLAS on busy
    cores spends 30× longer spinning than computing (measured: 11.6 ms vs 0.29 ms per field)."""
    try:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    except ImportError:  # pragma: no cover
        return None
    return threadpool_limits(limits=1, user_api="blas")


def _init(root: str, size: int, compress_level: int) -> None:
    _CTX.update(root=Path(root), size=size, compress_level=compress_level)
    if "blas_limit" not in _CTX:
        _CTX["blas_limit"] = _single_thread_blas()


def _work(job: Job) -> tuple[str, str]:
    data = encode_png(draw(job, _CTX["size"]), _CTX["compress_level"])
    atomic_write_bytes(_CTX["root"] / job.rel, data)
    return job.rel, hashlib.sha256(data).hexdigest()


START_METHOD: str | None = None  # None = auto (see ``_start_method``); tests set "fork" or "spawn"


def _start_method() -> str:
    """``fork`` where it is safe, else ``spawn``.

    Workers need nothing from the caller's ``__main__``. With ``fork`` it is not re-imported, so a
    script calling ``make_demo_data`` without an ``if __name__ == "__main__":`` guard works and its
    top-level code never runs twice. Once torch is loaded its OpenMP/CUDA state does not survive a
    fork, so then the workers are spawned (and such a script needs the guard).
    """
    import multiprocessing as mp

    if START_METHOD:
        return START_METHOD
    if "fork" in mp.get_all_start_methods() and "torch" not in sys.modules:
        return "fork"
    return "spawn"


def _work_chunk(jobs: list[Job]) -> list[tuple[str, str]]:
    return [_work(j) for j in jobs]


def run_jobs(jobs: list[Job], root: Path, *, size: int, compress_level: int, workers: int,
             progress: bool | None, desc: str) -> dict[str, str]:
    """Draw and write every job under ``root``; returns {relative path: sha256 of the PNG}."""
    from ..progress import progress as progress_bar

    hashes: dict[str, str] = {}
    if workers <= 1 or len(jobs) < 2 * workers:
        _CTX.update(root=Path(root), size=size, compress_level=compress_level)
        limit = _single_thread_blas()
        bar = progress_bar(total=len(jobs), desc=desc, unit="img", disable=None if progress is None else not progress)
        try:
            for rel, digest in map(_work, jobs):
                hashes[rel] = digest
                bar.update(1)
        finally:
            bar.close()
            if limit is not None:
                limit.restore_original_limits()
        return hashes

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    method = _start_method()
    size_chunk = max(1, min(32, len(jobs) // (workers * 8)))
    chunks = [jobs[i : i + size_chunk] for i in range(0, len(jobs), size_chunk)]
    # the pool is started before the progress bar, whose monitor thread should not be forked
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init,
                               initargs=(str(root), size, compress_level))
    bar = None
    try:
        bar = progress_bar(total=len(jobs), desc=desc, unit="img", disable=None if progress is None else not progress)
        pending = set()
        todo = iter(chunks)
        for chunk in todo:  # keep a bounded number of chunks in flight
            pending.add(pool.submit(_work_chunk, chunk))
            if len(pending) >= 4 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                hashes.update(result)
                bar.update(len(result))
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(pool.submit(_work_chunk, nxt))
    except BrokenProcessPool as exc:
        raise FprtError(
            f"a worker process of make-demo-data died ({exc}); workers were started with {method!r}. "
            "When make_demo_data runs with workers > 1 from a script that imports torch, put the call under "
            "`if __name__ == \"__main__\":`, or pass workers=1 (--workers 1)"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return hashes


def content_hash(hashes: dict[str, str]) -> str:
    """One hash of a whole set of files: sha256 over sorted ``path sha256`` lines."""
    h = hashlib.sha256()
    for rel in sorted(hashes):
        h.update(f"{rel} {hashes[rel]}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------ the output folder
_OPEN: dict[Path, object] = {}


def begin(out: Path, overwrite: bool) -> Path:
    """Check OUT, lock it and create the staging folder the dataset is built in (``fprt.outdir``: the one
    output-folder policy of every fprt command)."""
    from fprt.outdir import OutputFolder

    folder = OutputFolder(out, overwrite=overwrite, command="make-demo-data", option="output folder").__enter__()
    _OPEN[folder.path] = folder
    return folder.path


def commit(tmp: Path, out: Path, overwrite: bool) -> None:
    """Swap the finished dataset in as OUT (the previous one, with ``overwrite``, removed afterwards)."""
    folder = _OPEN.pop(tmp)
    try:
        folder.commit()
    finally:
        folder.__exit__(None, None, None)


def abort(tmp: Path) -> None:
    folder = _OPEN.pop(tmp, None)
    if folder is not None:
        folder.__exit__(None, None, None)


def write_labels(path: Path, labels: dict[str, str]) -> None:
    """``image_id,label`` per line, no header, sorted by id (the run.csv format)."""
    atomic_write_text(path, "".join(f"{k},{labels[k]}\n" for k in sorted(labels)))


def write_sources(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """Ground truth of every generated image: split, image_id, kind (novel|near-copy|moved-copy|restyled-copy|blend), source real ids."""
    lines = ["split,image_id,kind,sources\n"] + [",".join(r) + "\n" for r in rows]
    atomic_write_text(path, "".join(lines))


__all__ = ["draw", "encode_png", "run_jobs", "content_hash", "begin", "commit", "abort", "write_labels",
           "write_sources"]
