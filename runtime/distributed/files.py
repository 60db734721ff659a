"""The driver's two reads of every image — content hash and bad-file screening — done by the workers instead.

A local ``fprt score`` reads each file once to hash it (the cache key) and once to screen it before
any model work. On one machine that costs little; for a million images on a cluster it would make
the driver read every byte over its one network link while the nodes wait. ``RayFilePass`` gives
``fprt.runtime.score`` a ``hasher`` and a ``screener`` with the local functions' signatures and
results, computed by Ray Data tasks over the FILE LIST: the driver receives 32 bytes per image
(the digest) and the reasons of the bad files, nothing else.

``score_on_ray(file_pass="auto")`` uses it when the cluster has more than one node; a single
machine keeps the driver's own threads (same cores, no Ray start-up per pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np


def _hash_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data task: the SHA-256 of each file's content (same digest as ``pipeline.hash_files``)."""
    from fprt.runtime.pipeline import _digest

    return {"index": batch["index"], "digest": np.array([_digest(Path(str(p))).hex() for p in batch["path"]], dtype=object)}


def _check_batch(batch: dict[str, np.ndarray], level: str, window) -> dict[str, np.ndarray]:
    """Ray Data task: '' for a usable file, else why not (``fprt.data.badfiles.check_one``)."""
    from fprt.data.badfiles import check_one

    reasons = []
    for p in batch["path"]:
        bad = check_one(str(p), level=level, window=window)
        reasons.append("" if bad is None else bad.reason)
    return {"index": batch["index"], "reason": np.array(reasons, dtype=object)}


@dataclass
class RayFilePass:
    """``hash_files`` and ``screen_files`` as Ray Data tasks (``block_rows`` files per task)."""

    block_rows: int = 1024
    info: dict = field(default_factory=dict)

    def _map(self, paths: Sequence, fn: Callable, **fn_kwargs) -> Iterable[dict[str, np.ndarray]]:
        import pyarrow as pa

        from fprt.runtime.distributed.cluster import require_ray

        ray = require_ray()
        n = len(paths)
        tables = [pa.table({"index": np.arange(s, min(n, s + self.block_rows), dtype=np.int64),
                            "path": [str(Path(p).absolute()) for p in paths[s:s + self.block_rows]]})
                  for s in range(0, n, self.block_rows)]
        ds = ray.data.from_arrow(tables).map_batches(fn, fn_kwargs=fn_kwargs or None, batch_size=None,
                                                     batch_format="numpy", num_cpus=1)
        return ds.iter_batches(batch_size=None, batch_format="numpy")

    def hash_files(self, paths: Sequence, workers: int = 2) -> list[bytes]:
        """``pipeline.hash_files`` on the workers: 32-byte digests in input order."""
        import time

        t0 = time.perf_counter()
        out: list[bytes | None] = [None] * len(paths)
        if paths:
            for b in self._map(paths, _hash_batch):
                for i, d in zip(b["index"], b["digest"]):
                    out[int(i)] = bytes.fromhex(str(d))
        self.info["hash"] = {"files": len(paths), "seconds": round(time.perf_counter() - t0, 3)}
        return out  # type: ignore[return-value]

    def screen_files(self, paths: Iterable, on_error: str = "stop", *, report=None, workers: int | None = None,
                     level: str = "decode", window=None, progress=False):
        """``fprt.data.screen_files`` with the checks on the workers: same policy, same results."""
        import time

        from fprt.data.badfiles import BadFile, apply_bad_file_policy, check_on_error

        check_on_error(on_error)
        t0 = time.perf_counter()
        paths = [Path(p) for p in paths]
        reasons = [""] * len(paths)
        if paths:
            for b in self._map(paths, _check_batch, level=level, window=window):
                for i, r in zip(b["index"], b["reason"]):
                    reasons[int(i)] = str(r)
        bad = [BadFile(p, r) for p, r in zip(paths, reasons) if r]
        self.info["screen"] = {"files": len(paths), "bad": len(bad), "seconds": round(time.perf_counter() - t0, 3)}
        return apply_bad_file_policy(paths, bad, on_error, report)

