"""The images export checks itself on: parity images and INT8 calibration images.

Parity is checked on real images whenever there are any, in this order:

1. the images the caller names (``images=``: a folder or a list of files) — for ``--int8`` the
   calibration folder;
2. the images of the dataset the checkpoint was trained on (the run's data summary), when that
   folder still exists;
3. otherwise deterministic synthetic CT-like images, and the report says so in capitals
   (``SYNTHETIC``): a parity figure on them proves the graph equals the model, not that it behaves
   on real data.

A calibration folder in one of fprt's dataset layouts (``fprt.data.discover``) also gives labels
(the subset or membership class of each image), which the INT8 accuracy gate uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fprt.errors import DataError
from fprt.preprocess import Preprocess


@dataclass
class ImageSet:
    """Decoded images resized by the model's ``Preprocess``: ``pixels`` N×S×S uint8."""

    pixels: np.ndarray
    source: str
    """Where they came from, in words (printed and stored in the parity report)."""
    synthetic: bool = False
    paths: list[Path] = field(default_factory=list)
    labels: list[str] | None = None
    """Class name of each image, when the folder's layout tells it."""
    roles: list[str] | None = None
    """``real`` / ``generated`` per image when the layout tells it (subsets: centroids come from real images)."""

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def take(self, n: int) -> np.ndarray:
        """The first ``n`` images, cycling when there are fewer (a batch of exactly ``n``)."""
        idx = np.arange(n) % len(self)
        return self.pixels[idx]


def decode(path: Path) -> np.ndarray:
    """H×W uint8 through ``fprt.data.decode_image`` (the one decoder fprt uses everywhere)."""
    from fprt.data.decode import decode_image

    return decode_image(path)


def _spread(items: list, n: int) -> list:
    """``n`` items evenly spread over a sorted list (deterministic; all of them when there are fewer)."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def _list_images_recursive(folder: Path) -> list[Path]:
    from fprt.data.files import is_image_file

    return sorted((p for p in folder.rglob("*") if is_image_file(p)), key=lambda p: str(p.relative_to(folder)))


def _load(paths: list[Path], preprocess: Preprocess) -> np.ndarray:
    if not paths:
        return np.zeros((0, preprocess.size, preprocess.size), np.uint8)
    return np.stack([preprocess.resize_uint8(decode(p)) for p in paths])


def images_from(images, preprocess: Preprocess, *, n: int = 32) -> ImageSet:
    """Up to ``n`` images from a folder (searched recursively, spread over the sorted list) or a list of files."""
    if isinstance(images, (str, Path)):
        folder = Path(images)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such image folder")
        paths = _list_images_recursive(folder)
        if not paths:
            raise DataError(f"{folder}: holds no image files (.png, .jpg, .tif, .dcm)")
        source = f"{len(_spread(paths, n))} real images from {folder}"
    else:
        paths = [Path(p) for p in images]
        if not paths:
            raise DataError("an empty list of parity images was given")
        source = f"{len(_spread(paths, n))} real images given by the caller"
    paths = _spread(paths, n)
    return ImageSet(_load(paths, preprocess), source=source, paths=paths)


def synthetic_images(preprocess: Preprocess, n: int = 32, seed: int = 0) -> ImageSet:
    """Deterministic CT-like slices (an elliptic body, two dark lungs, bright spots, noise): the last resort."""
    rng = np.random.default_rng(seed)
    s = preprocess.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s - 0.5
    out = np.empty((n, s, s), np.uint8)
    for i in range(n):
        img = np.full((s, s), 10.0, np.float32)
        a, b = rng.uniform(0.35, 0.45), rng.uniform(0.25, 0.4)
        img[(xx / a) ** 2 + (yy / b) ** 2 < 1] = rng.uniform(120, 170)
        for side in (-1, 1):
            cx, ry = side * rng.uniform(0.12, 0.2), rng.uniform(0.12, 0.2)
            img[((xx - cx) / 0.1) ** 2 + (yy / ry) ** 2 < 1] = rng.uniform(20, 50)
        for _ in range(rng.integers(2, 6)):
            cx, cy, r = rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(0.01, 0.04)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(180, 250)
        img += rng.normal(0, 8, (s, s))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return ImageSet(
        out,
        source=f"{n} SYNTHETIC images (no real images were given and the run's training data was not found)",
        synthetic=True,
    )


def run_data_root(run: str | Path | None) -> Path | None:
    """The training data folder a run's ``config.json`` records (``{"data": {"root": ...}}``), when it still exists."""
    if run is None:
        return None
    run = Path(run)
    config = (run if run.is_dir() else run.parent) / "config.json"
    try:
        import json

        root = json.loads(config.read_text(encoding="utf-8")).get("data", {}).get("root")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(root) if isinstance(root, str) and Path(root).is_dir() else None


def calibration_folder(run: str | Path | None, data: str | Path | None = None) -> Path | None:
    """Where INT8 calibration images come from when none are named (``fprt export-onnx --int8``, ``fprt bench``):
    ``data`` when it holds a training split, else the training data the run ``run`` was trained on; None if neither."""
    from fprt.data import discover
    from fprt.errors import DataError

    for candidate in (data, run_data_root(run)):
        if candidate is None:
            continue
        try:
            if discover(candidate).has_train:
                return Path(candidate)
        except DataError:
            continue
    return None


def parity_images(preprocess: Preprocess, *, images=None, run=None, n: int = 32, seed: int = 0) -> ImageSet:
    """Images for the parity check, by the order in the module docstring (``run``: the run folder or checkpoint)."""
    if images is not None:
        return images_from(images, preprocess, n=n)
    root = run_data_root(run)
    if root is not None:
        found = images_from(root, preprocess, n=n)
        found.source = f"{len(found)} real images from the run's training data {root}"
        return found
    return synthetic_images(preprocess, n=n, seed=seed)


def calibration_set(folder: str | Path, preprocess: Preprocess, *, n: int = 128) -> ImageSet:
    """Up to ``n`` images from an INT8 calibration folder, with labels when it is an fprt dataset layout.

    A dataset folder (``fprt.data.discover`` recognises it) gives labelled images, balanced over the
    classes, real and generated alike; any other folder gives unlabelled images (searched recursively).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such calibration folder (--calib expects a folder of images or a dataset)")
    layout = None
    try:
        from fprt.data import discover

        layout = discover(folder)
    except ImportError:
        layout = None
    except DataError:
        layout = None  # not a dataset layout: a plain image folder
    if layout is None or not getattr(layout, "has_train", False):
        found = images_from(folder, preprocess, n=n)
        found.source = f"{len(found)} unlabelled calibration images from {folder}"
        return found

    groups: list[tuple[str, str, list[Path]]] = []  # (label, role, paths)
    for cls, paths in sorted(layout.real.items()):
        groups.append((str(cls), "real", list(paths)))
    if layout.task == "subsets":
        for cls, paths in sorted(layout.generated.items()):
            groups.append((str(cls), "generated", list(paths)))
    groups = [g for g in groups if g[2]]
    if not groups:
        raise DataError(f"{folder}: the dataset holds no training images to calibrate on")
    per_group = max(1, n // len(groups))
    paths, labels, roles = [], [], []
    for label, role, group in groups:
        chosen = _spread(sorted(group), per_group)
        paths += chosen
        labels += [label] * len(chosen)
        roles += [role] * len(chosen)
    return ImageSet(
        _load(paths, preprocess),
        source=f"{len(paths)} labelled calibration images from {folder} ({layout.task}: {', '.join(g[0] + '/' + g[1] for g in groups)})",
        paths=paths,
        labels=labels,
        roles=roles,
    )
