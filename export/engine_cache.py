"""TensorRT engine bookkeeping that needs neither TensorRT nor a GPU: batch profiles, cache keys, the cache.

A TensorRT engine only runs on the TensorRT version, GPU model and compute capability it was built
for, with the precision and batch range it was built with. fprt therefore keys every engine by
content (``EngineKey``): TensorRT version, GPU name, compute capability, sha256 of the ONNX bytes the
engine was built from, precision and batch profile. The key is written beside the engine
(``model.plan.json``, with the model's ``ModelMeta`` so the runtime needs nothing else) and in the
engine cache (``$FPRT_CACHE_DIR/engines/<key digest>.plan``); an engine whose key does not match the
machine and the request is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fprt.errors import FprtError, ModelError

DEFAULT_OPT_BATCH = 64
DEFAULT_MAX_BATCH = 256
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class BatchProfile:
    """The batch range of a TensorRT optimisation profile: ``min ≤ opt ≤ max`` (the engine is fastest at ``opt``)."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        for name in ("min", "opt", "max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FprtError(f"--{name}-batch must be a positive integer, got {value!r}")
        if not self.min <= self.opt <= self.max:
            raise FprtError(
                f"batch profile needs min ≤ opt ≤ max, got --min-batch {self.min} --opt-batch {self.opt} --max-batch {self.max}"
            )

    @classmethod
    def choose(cls, min_batch: int | None = None, opt_batch: int | None = None, max_batch: int | None = None) -> "BatchProfile":
        """Fill what the user left out: min 1, max 256 (or opt when only opt is given), opt 64 clipped into [min, max]."""
        given = {k: v for k, v in (("min", min_batch), ("opt", opt_batch), ("max", max_batch)) if v is not None}
        order = [k for k in ("min", "opt", "max") if k in given]
        for a, b in zip(order, order[1:]):
            if given[a] > given[b]:
                raise FprtError(
                    f"--{a}-batch {given[a]} > --{b}-batch {given[b]}: a batch profile needs min ≤ opt ≤ max"
                )
        lo = 1 if min_batch is None else min_batch
        if max_batch is None:
            hi = max(DEFAULT_MAX_BATCH, lo) if opt_batch is None else max(opt_batch, lo)
        else:
            hi = max_batch
        if opt_batch is None:
            opt = min(max(DEFAULT_OPT_BATCH, lo), hi) if hi >= lo else lo
        else:
            opt = opt_batch
        return cls(lo, opt, hi)

    def describe(self) -> str:
        return f"min {self.min}, opt {self.opt}, max {self.max}"

    def check(self, batch: int, *, source: str = "engine") -> None:
        """Raise ``ModelError`` printing the allowed range when ``batch`` is outside it."""
        if not self.min <= batch <= self.max:
            raise ModelError(
                f"{source}: batch {batch} is outside the engine's optimisation profile ({self.describe()}); "
                f"use batches of {self.min}..{self.max} or rebuild with `fprt build-engine --min-batch/--opt-batch/--max-batch`"
            )

    def shapes(self, sample_shape) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) full input shapes for one input whose per-sample shape is ``sample_shape`` (C×H×W)."""
        rest = tuple(int(d) for d in sample_shape)
        return (self.min, *rest), (self.opt, *rest), (self.max, *rest)

    def as_list(self) -> list[int]:
        return [self.min, self.opt, self.max]


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. Equal keys ⇒ the engine can be reused."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    onnx_sha256: str
    precision: str
    profile: tuple[int, int, int]
    strongly_typed: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = list(self.profile)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineKey":
        data = dict(data)
        data["profile"] = tuple(int(x) for x in data["profile"])
        return cls(**data)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def mismatches(self, other: "EngineKey") -> list[str]:
        """Human-readable differences ``self`` (the file's) vs ``other`` (wanted)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: engine has {a[k]!r}, needed {b[k]!r}" for k in a if a[k] != b[k]]

    def machine_mismatches(self, *, tensorrt_version: str, gpu_name: str, compute_capability: str) -> list[str]:
        """Differences between the machine the engine was built on and this one."""
        out = []
        for name, have in (("tensorrt_version", tensorrt_version), ("gpu_name", gpu_name), ("compute_capability", compute_capability)):
            if getattr(self, name) != have:
                out.append(f"{name}: engine built with {getattr(self, name)!r}, this machine has {have!r}")
        return out


def sidecar_path(plan: str | os.PathLike) -> Path:
    plan = Path(plan)
    return plan.with_name(plan.name + SIDECAR_SUFFIX)


def write_sidecar(plan: Path, key: EngineKey, plan_sha256: str, meta_dict: dict, io: dict) -> Path:
    from fprt.io import atomic_write_json

    return atomic_write_json(
        sidecar_path(plan),
        {"key": key.to_dict(), "key_digest": key.digest(), "plan_sha256": plan_sha256, "io": io, "meta": meta_dict},
    )


def read_sidecar(plan: str | os.PathLike) -> dict:
    """The sidecar of an engine file; ``ModelError`` when missing or unreadable."""
    path = sidecar_path(plan)
    if not path.exists():
        raise ModelError(f"{plan}: no {path.name} beside it; build engines with `fprt build-engine` (it records what the engine was built for)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        EngineKey.from_dict(data["key"])
        data["plan_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: corrupt engine record ({type(exc).__name__}: {exc}); rebuild with `fprt build-engine`") from exc
    return data


def engine_matches(plan: str | os.PathLike, key: EngineKey) -> tuple[bool, str]:
    """Whether the engine file ``plan`` was built for ``key`` and is intact; the reason when not."""
    from fprt.io import sha256_file

    plan = Path(plan)
    if not plan.exists():
        return False, "no engine file"
    try:
        data = read_sidecar(plan)
    except ModelError as exc:
        return False, str(exc)
    have = EngineKey.from_dict(data["key"])
    if have != key:
        return False, "; ".join(have.mismatches(key))
    if sha256_file(plan) != data["plan_sha256"]:
        return False, "the engine file's sha256 does not match its record (torn or modified file)"
    return True, "up to date"


def cache_root() -> Path:
    """``$FPRT_CACHE_DIR/engines`` (default ``~/.cache/fprt/engines``)."""
    base = os.environ.get("FPRT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fprt")
    return Path(base) / "engines"


class EngineCache:
    """Engines by key digest: ``<root>/<digest>.plan`` + ``<digest>.plan.json``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def path_for(self, key: EngineKey) -> Path:
        return self.root / f"{key.digest()}.plan"

    def lookup(self, key: EngineKey) -> Path | None:
        path = self.path_for(key)
        ok, _ = engine_matches(path, key)
        return path if ok else None

    def store(self, key: EngineKey, plan_bytes: bytes, meta_dict: dict, io: dict) -> Path:
        from fprt.io import atomic_write_bytes, sha256_bytes

        path = self.path_for(key)
        atomic_write_bytes(path, plan_bytes)
        write_sidecar(path, key, sha256_bytes(plan_bytes), meta_dict, io)
        return path
