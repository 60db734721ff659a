"""The small abstract base every runtime backend implements (one backend per model format).

A backend loads one model file, reads its ``ModelMeta`` (preprocessing, kind, classes, centroids,
threshold) and runs it. The pipeline only ever calls three things:

- ``infer(pixels)``: N×S×S uint8 pixels (already resized by ``meta.preprocess``) → the model's
  per-image outputs as a dict (``embedding``, and ``logits`` for classifiers). The backend does
  the normalisation itself, or hands raw uint8 to a graph that takes them (the default export since 2026-12-04).
- ``pair_probability(a, b)``: pair scorers only — N pairs of pixel batches → N probabilities.
- ``forward(inputs)``: the raw graph call, a dict of named arrays → a dict of named outputs.

On the CPU outputs are NumPy arrays; on CUDA they are torch tensors on the device, so embeddings
stay on the GPU between the model and the similarity step. ``BackendSpec`` is the picklable recipe
for a backend (what a Ray actor receives and loads once).
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fprt.modelmeta import ModelMeta

log = logging.getLogger("fprt.runtime")

DEVICES = ("cpu", "cuda")

# Which outputs of each model kind are per-image results the pipeline caches and scores with.
IMAGE_OUTPUTS = {"embedding": ("embedding",), "classifier": ("logits", "embedding"), "pair": ("embedding",)}


def check_device(device: str) -> str:
    import difflib

    from fprt.errors import FprtError

    dev = str(device).strip().lower()
    if dev.startswith("cuda:"):
        dev = "cuda"
    aliases = {"gpu": "cuda"}
    dev = aliases.get(dev, dev)
    if dev not in DEVICES:
        close = difflib.get_close_matches(dev, list(DEVICES) + list(aliases), n=1)
        hint = f" Did you mean {aliases.get(close[0], close[0])!r}?" if close else ""
        raise FprtError(f"--device {device!r} is not a device fprt knows; expected one of {list(DEVICES)}.{hint}")
    return dev


def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads not counted; affinity respected)."""
    import os

    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        phys = core = None
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not key and phys is not None and core is not None:
                    cores.add((phys, core))
                    phys = core = None
        if phys is not None and core is not None:
            cores.add((phys, core))
    except OSError:
        pass
    physical = len(cores) or (os.cpu_count() or 1)
    return max(1, min(physical, allowed))


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to (re)load a backend in another process: picklable, small."""

    model: str
    backend: str | None = None  # format name; None = from the model file (fprt.formats)
    device: str = "cpu"
    threads: int | None = None  # CPU intra-op threads; None = physical cores
    compile: bool = False  # torch backend: torch.compile
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> "Backend":
        from fprt.runtime.backends import load_backend

        return load_backend(
            self.model, backend=self.backend, device=self.device, threads=self.threads, compile=self.compile, **self.options
        )


class Backend(abc.ABC):
    """One loaded model. Subclasses set ``meta``, ``input_names``, ``output_names``, ``model_sha256``."""

    format: str = "?"

    def __init__(self, model: str | Path, *, device: str = "cpu", threads: int | None = None) -> None:
        self.path = Path(model)
        self.device = check_device(device)
        self.threads = threads if threads is not None else physical_cores()
        self.meta: ModelMeta
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()
        self.model_sha256: str = ""
        self.details: dict[str, Any] = {}

    # ---------------------------------------------------------------- the raw call
    @abc.abstractmethod
    def forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the graph: named inputs (float32 N×C×H×W, or uint8 for uint8-input graphs, the default export) → named outputs."""

    # ---------------------------------------------------------------- what the pipeline calls
    @property
    def kind(self) -> str:
        return self.meta.kind

    @property
    def image_outputs(self) -> tuple[str, ...]:
        """Names of the per-image outputs ``infer`` returns (what the embedding cache stores)."""
        return IMAGE_OUTPUTS[self.meta.kind]

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """N×S×S uint8 → the array the graph's image input takes (float32 normalised, or uint8)."""
        return self.meta.preprocess.normalize_uint8(_check_pixels(pixels, self.meta.preprocess.size))

    @abc.abstractmethod
    def infer(self, pixels: np.ndarray) -> dict[str, Any]:
        """N×S×S uint8 → per-image outputs (``image_outputs``), NumPy on the CPU, torch tensors on CUDA."""

    def pair_probability(self, pixels_a: np.ndarray, pixels_b: np.ndarray):
        """Pair scorers: probability that each (a[i], b[i]) is a match (N)."""
        from fprt.errors import ModelError

        raise ModelError(f"{self.path}: a {self.meta.kind!r} model has no pair output; --method pair needs a pair scorer")

    def describe(self) -> dict[str, Any]:
        """What summary.json records about the backend."""
        return {
            "format": self.format,
            "model": str(self.path),
            "model_sha256": self.model_sha256,
            "device": self.device,
            "threads": self.threads,
            "kind": self.meta.kind,
            "task": self.meta.task,
            "model_name": self.meta.model,
            "inputs": list(self.input_names),
            "outputs": list(self.output_names),
            **self.details,
        }

    def close(self) -> None:
        """Release the model (sessions, device memory)."""


def _check_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (size, size):
        raise ValueError(f"expected N×{size}×{size} uint8 pixels (resized by the model's Preprocess), got {pixels.dtype} {pixels.shape}")
    return pixels
