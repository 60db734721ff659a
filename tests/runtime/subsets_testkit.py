"""Subsets data with two kinds of evidence, made by the tests (imported as a plain module).

Each subset has its own *content* (a class-specific smooth structure, overlapping between subsets)
and its own *generator*, which adds a faint periodic trace locked to the pixel grid (a checkerboard,
a period-4 grid, or a grating) to every generated image, the way upsampling layers do. Real images
carry no trace. ``content`` scales how far apart the subsets' content is (0 = the same
distribution for every subset: only the generator tells them apart); ``trace`` is the trace's
amplitude in gray levels (noise: σ = 6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOISE = 6.0


def _smooth(rng, size: int, cells: int = 6) -> np.ndarray:
    from PIL import Image

    coarse = rng.normal(0, 1, size=(cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)


def traces(size: int, k: int) -> list[np.ndarray]:
    """One zero-mean, unit-amplitude periodic pattern per subset (different kind or phase each)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    kinds = [
        np.cos(np.pi * x) * np.cos(np.pi * y),  # checkerboard, period 2
        0.5 * (np.cos(np.pi / 2 * x) + np.cos(np.pi / 2 * y)),  # period-4 grid
        np.cos(2 * np.pi / 3.3 * (0.8 * x + 0.6 * y)),  # grating, period 3.3 px at an angle
        -np.cos(np.pi * x) * np.cos(np.pi * y),  # checkerboard, other phase
        np.cos(2 * np.pi / 5.1 * (0.28 * x - 0.96 * y) + 1.0),  # another grating
    ]
    return [p / np.abs(p).max() for p in kinds[:k]]


def class_content(size: int, k: int, seed: int = 99) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_smooth(rng, size, 4) * 25 for _ in range(k)]


def image(rng, c: int, *, size: int, content: float, trace: float, generated: bool, k: int) -> np.ndarray:
    base = 120 + 30 * _smooth(rng, size) + content * class_content(size, k)[c]
    if generated:
        base = base + trace * traces(size, k)[c]
    return np.clip(base + rng.normal(0, NOISE, size=(size, size)), 0, 255).round().astype(np.uint8)


def make(root: Path, *, size: int = 64, k: int = 3, n_real: int = 30, n_gen: int = 30, n_test: int = 30,
         content: float = 0.35, trace: float = 2.0, seed: int = 0) -> Path:
    """train/real/t*, train/generated/gen_t*, test/generated_unknown + test/labels.csv."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    labels = []
    n = 0
    for c in range(k):
        for kind, count in (("real", n_real), ("gen", n_gen), ("test", n_test)):
            for i in range(count):
                im = image(rng, c, size=size, content=content, trace=trace, generated=kind != "real", k=k)
                if kind == "real":
                    path = root / "train" / "real" / f"t{c + 1}" / f"r{c}_{i:03d}.png"
                elif kind == "gen":
                    path = root / "train" / "generated" / f"gen_t{c + 1}" / f"g{c}_{i:03d}.png"
                else:
                    name = f"u{(n * 7919) % 100003:06d}"  # ids that do not give the class away
                    n += 1
                    path = root / "test" / "generated_unknown" / f"{name}.png"
                    labels.append(f"{name},t{c + 1}")
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(im).save(path)
    (root / "test" / "labels.csv").write_text("\n".join(labels) + "\n")
    return root


def load_split(root: Path):
    """(pixels N×S×S uint8, labels 0..K-1) of the generated training, real training and test images."""
    from PIL import Image

    def read(paths):
        return np.stack([np.asarray(Image.open(p), dtype=np.uint8) for p in paths])

    gen = sorted((root / "train" / "generated").glob("*/*.png"))
    real = sorted((root / "train" / "real").glob("*/*.png"))
    test = sorted((root / "test" / "generated_unknown").glob("*.png"))
    truth = dict(line.split(",") for line in (root / "test" / "labels.csv").read_text().split())
    cls = lambda name: int(name.replace("gen_", "")[1:]) - 1  # noqa: E731
    return (read(gen), np.array([cls(p.parent.name) for p in gen]),
            read(real), np.array([cls(p.parent.name) for p in real]),
            read(test), np.array([cls(truth[p.stem]) for p in test]), [p.stem for p in test])
