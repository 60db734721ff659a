"""Fixtures of the trainer tests: small in-memory data and small demo datasets made once per session."""

from __future__ import annotations

import numpy as np
import pytest


def stripes(n: int, k: int, size: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` gray images of class ``k``: stripes of frequency 2 + 2k at a random phase, plus noise."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        img = 128 + 60 * np.sin(2 * np.pi * (2 + 2 * k) * xx / size + rng.uniform(0, 2 * np.pi))
        out[i] = np.clip(img + rng.normal(0, noise, (size, size)), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="session")
def stripes_data():
    """Subsets TaskData, 3 classes of 48×48 stripes (real: 12 per class, generated: 20 per class, noisier)."""
    from fprt.trainer.datasets import TaskData

    rng = np.random.default_rng(0)
    k, size = 3, 48
    real = np.concatenate([stripes(12, c, size, 15, rng) for c in range(k)])
    gen = np.concatenate([stripes(20, c, size, 30, rng) for c in range(k)])
    return TaskData.from_pixels("subsets", [f"t{c + 1}" for c in range(k)], real, np.repeat(np.arange(k), 12),
                                gen, np.repeat(np.arange(k), 20))


@pytest.fixture(scope="session")
def demo_subsets(tmp_path_factory):
    """``fprt make-demo-data --task subsets`` with its default training counts (5 subsets × 60 real + 60
    generated) and 10 test images per subset, drawn at the default 256×256 (the tests train at 64×64)."""
    from fprt.demo import make_demo_data

    out = tmp_path_factory.mktemp("demo") / "subsets"
    make_demo_data(out, task="subsets", n_test=10, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_membership(tmp_path_factory):
    """``fprt make-demo-data --task membership`` (defaults: 150 used, 150 not used, 400 generated, the same again for test) drawn at 128×128."""
    from fprt.demo import make_demo_data

    out = tmp_path_factory.mktemp("demo") / "membership"
    make_demo_data(out, task="membership", size=128, progress=False)
    return out


@pytest.fixture(scope="session")
def stripes_membership():
    """Membership TaskData of 48×48 stripes: 10 used, 10 not used, 16 generated (noisy copies of used ones)."""
    from fprt.trainer.datasets import TaskData

    rng = np.random.default_rng(1)
    real = np.concatenate([stripes(1, c % 4, 48, 15, rng) for c in range(20)])
    labels = np.array([1] * 10 + [0] * 10)
    gen = np.clip(real[rng.integers(0, 10, 16)].astype(np.int16) + rng.integers(-20, 20, (16, 48, 48)), 0, 255).astype(np.uint8)
    return TaskData.from_pixels("membership", ["not_used", "used"], real, labels, gen)
