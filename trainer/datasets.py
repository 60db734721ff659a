"""Training data: image pools over ``fprt.data`` layouts, decoded and resized once.

``ImagePool`` holds N images at one ``Preprocess`` size as uint8 (1×S×S each). A pool whose pixels fit
in ``cache_bytes`` (default 2 GiB; 10,000 images of 256×256 take 655 MB) is decoded once, in a thread
pool, by ``fprt.data.iter_batches`` and kept in memory; a larger one decodes the images each step
asks for. Normalisation (``Preprocess.module()``) runs on the training device, so the cache stays
uint8 and the same float32 values reach the model in training and at inference.

``TaskData`` is what the trainer consumes: the real images with their labels, the generated images
with theirs, the class names and a summary for the run's config. ``load_task_data(root)`` builds it
from any layout ``fprt.data.discover`` accepts; ``TaskData.from_pixels`` from in-memory arrays.

Labels: subsets — the class index of t1..tK for real and generated images alike; membership — real
images 1 (used) / 0 (not used) with class names ("not_used", "used"), generated images all 1 (they
are made from used images; see ``fprt.trainer.pairs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fprt.errors import DataError
from fprt.preprocess import Preprocess

DEFAULT_CACHE_BYTES = 2 << 30
MEMBERSHIP_CLASSES = ("not_used", "used")


class ImagePool:
    """N gray images at ``preprocess.size`` as uint8, addressed by index."""

    def __init__(
        self,
        paths: list[Path] | None = None,
        preprocess: Preprocess | None = None,
        *,
        pixels: np.ndarray | None = None,
        cache: bool | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        workers: int | None = None,
        progress: bool = False,
        desc: str | None = None,
    ):
        if (paths is None) == (pixels is None):
            raise ValueError("ImagePool needs either paths (with a preprocess) or pixels")
        self.preprocess = preprocess
        self.workers = workers
        if pixels is not None:
            pixels = np.ascontiguousarray(pixels)
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1] != pixels.shape[2]:
                raise ValueError(f"ImagePool pixels must be N×S×S uint8, got {pixels.dtype} {pixels.shape}")
            if preprocess is not None and pixels.shape[1] != preprocess.size:
                raise ValueError(f"pixels are {pixels.shape[1]}² but the preprocess size is {preprocess.size}")
            self.paths = None
            self.size = int(pixels.shape[1])
            self._pixels = torch.from_numpy(pixels)
            return
        if preprocess is None:
            raise ValueError("ImagePool(paths=...) needs a preprocess")
        self.paths = [Path(p) for p in paths]
        self.size = preprocess.size
        need = len(self.paths) * self.size * self.size
        if cache is None:
            cache = need <= cache_bytes
        self._pixels = self._decode_all(progress=progress, desc=desc) if cache and self.paths else None

    @classmethod
    def from_pixels(cls, pixels: np.ndarray) -> "ImagePool":
        return cls(pixels=pixels)

    @property
    def cached(self) -> bool:
        return self._pixels is not None

    def __len__(self) -> int:
        return len(self._pixels) if self.paths is None else len(self.paths)

    def _decode(self, paths: list[Path], *, progress: bool = False, desc: str | None = None) -> np.ndarray:
        from fprt.data import iter_batches

        out = np.empty((len(paths), self.size, self.size), dtype=np.uint8)
        for batch in iter_batches(paths, self.preprocess, batch_size=256, workers=self.workers, on_error="stop",
                                  progress=progress, desc=desc):
            out[batch.indices] = batch.pixels
        return out

    def _decode_all(self, *, progress: bool, desc: str | None) -> torch.Tensor:
        return torch.from_numpy(self._decode(self.paths, progress=progress, desc=desc))

    def get(self, indices) -> torch.Tensor:
        """uint8 N×1×S×S tensor of the images at ``indices``."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self._pixels is not None:
            return self._pixels[torch.from_numpy(idx)][:, None]
        return torch.from_numpy(self._decode([self.paths[i] for i in idx]))[:, None]

    def subset(self, indices) -> "ImagePool":
        """A pool of the images at ``indices`` (shares the cache when there is one)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        new = object.__new__(ImagePool)
        new.preprocess, new.workers, new.size = self.preprocess, self.workers, self.size
        new.paths = None if self.paths is None else [self.paths[i] for i in idx]
        new._pixels = None if self._pixels is None else self._pixels[torch.from_numpy(idx)]
        return new

    def batches(self, batch_size: int):
        """uint8 N×1×S×S tensors over the whole pool in order."""
        for start in range(0, len(self), batch_size):
            yield self.get(np.arange(start, min(start + batch_size, len(self))))


@dataclass
class TaskData:
    task: str
    class_names: list[str]
    real: ImagePool
    real_labels: np.ndarray
    generated: ImagePool
    generated_labels: np.ndarray
    summary: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in ("subsets", "membership"):
            raise ValueError(f"task must be subsets or membership, got {self.task!r}")
        self.real_labels = np.asarray(self.real_labels, dtype=np.int64)
        self.generated_labels = np.asarray(self.generated_labels, dtype=np.int64)
        if len(self.real_labels) != len(self.real) or len(self.generated_labels) != len(self.generated):
            raise ValueError("TaskData: labels and images differ in number")
        if self.real.size != self.generated.size:
            raise ValueError("TaskData: real and generated images differ in size")
        if not self.summary:
            self.summary = self.describe()

    @property
    def size(self) -> int:
        return self.real.size

    def describe(self) -> dict:
        names = self.class_names
        real = {names[k]: int((self.real_labels == k).sum()) for k in range(len(names))}
        if self.task == "subsets":
            gen = {names[k]: int((self.generated_labels == k).sum()) for k in range(len(names))}
        else:
            gen = {"generated": int(len(self.generated_labels))}
        return {"task": self.task, "classes": list(names), "real": real, "generated": gen}

    @classmethod
    def from_pixels(cls, task: str, class_names, real_pixels, real_labels, generated_pixels, generated_labels=None,
                    summary: dict | None = None) -> "TaskData":
        """In-memory data (tests, notebooks); membership generated labels default to 1 (used)."""
        if generated_labels is None:
            if task != "membership":
                raise ValueError("subsets TaskData needs generated_labels")
            generated_labels = np.ones(len(generated_pixels), dtype=np.int64)
        return cls(task, list(class_names), ImagePool.from_pixels(real_pixels), real_labels,
                   ImagePool.from_pixels(generated_pixels), generated_labels, summary or {})


def training_files(root: str | Path, *, task: str | None = None):
    """``(layout, classes, (real paths, labels), (generated paths, labels))`` of the training split at
    ``root``, checked — task, layout, enough images per class to split for validation — without
    decoding a single image (``DataError`` naming the folder or class otherwise)."""
    from fprt.data import discover
    from fprt.trainer.pairs import check_split_counts

    layout = discover(root)
    if task is not None and task != layout.task:
        raise DataError(f"--data {root}: holds a {layout.task} dataset ({layout.kind}), not a {task} one")
    if not layout.has_train:
        raise DataError(
            f"--data {root}: no training images: found {layout.kind}; training needs real/ and generated/ "
            "images with their labels (the training layout of the task)"
        )
    classes = list(layout.classes)
    real_paths, real_labels = [], []
    for k, cls in enumerate(classes):
        paths = layout.real.get(cls, [])
        real_paths += paths
        real_labels += [k] * len(paths)
    if layout.task == "subsets":
        gen_paths, gen_labels = [], []
        for k, cls in enumerate(classes):
            paths = layout.generated.get(cls, [])
            gen_paths += paths
            gen_labels += [k] * len(paths)
    else:
        if tuple(classes) != MEMBERSHIP_CLASSES:
            raise DataError(f"--data {root}: membership classes are {classes}, expected {list(MEMBERSHIP_CLASSES)}")
        gen_paths = [p for paths in layout.generated.values() for p in paths]
        gen_labels = [1] * len(gen_paths)
    check_split_counts(layout.task, classes, real_labels, gen_labels, f"--data {root}")
    return layout, classes, (real_paths, real_labels), (gen_paths, gen_labels)


def load_task_data(
    root: str | Path,
    preprocess: Preprocess,
    *,
    task: str | None = None,
    workers: int | None = None,
    cache: bool | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    progress: bool = False,
) -> TaskData:
    """The training part of the dataset at ``root`` (any layout ``fprt.data.discover`` accepts)."""
    layout, classes, (real_paths, real_labels), (gen_paths, gen_labels) = training_files(root, task=task)
    kw = dict(cache=cache, cache_bytes=cache_bytes, workers=workers, progress=progress)
    real = ImagePool(real_paths, preprocess, desc="decode real", **kw)
    generated = ImagePool(gen_paths, preprocess, desc="decode generated", **kw)
    data = TaskData(layout.task, classes, real, real_labels, generated, gen_labels)
    data.summary = {**data.describe(), "root": str(Path(root).resolve()), "layout": layout.kind}
    return data
