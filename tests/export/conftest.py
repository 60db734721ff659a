"""Fixtures for the export tests: a small labelled image dataset on disk, a model with centroids.

The tiny models live in ``export_testlib.py`` (imported by the test modules as ``export_testlib``).
"""

from __future__ import annotations

import pytest
import torch

from export_testlib import CLASSES, class_image, make_model


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory):
    """A subsets training layout (real/t1..t3 + generated/t1..t3, 8 PNGs each, 80×80: resized to 64 by Preprocess)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("export-data")
    for c, name in enumerate(CLASSES):
        for split, offset in (("real", 0), ("generated", 100)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(8):
                Image.fromarray(class_image(c, offset + i)).save(folder / f"{split[0]}{name}_{i:02d}.png")
    return root


def _with_centroids(real_dirs):
    """The tiny embedding model with class centroids from its real-image embeddings (as the trainer stores them)."""
    from fprt.data.decode import decode_image

    model, meta = make_model("embedding")
    pre = meta.preprocess
    cents = []
    for folder in real_dirs:
        paths = sorted(folder.glob("*.png"))
        x = torch.from_numpy(pre.batch([decode_image(p) for p in paths]))
        with torch.no_grad():
            cents.append(model(x).mean(0).tolist())
    meta.centroids = cents
    return model, meta


@pytest.fixture(scope="session")
def embedding_with_centroids(dataset_dir):
    return _with_centroids([dataset_dir / "real" / name for name in CLASSES])


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """A small `fprt make-demo-data` subsets set (3 subsets, 8 real + 8 generated each, 64×64)."""
    import fprt.demo as demo  # an ImportError must fail the tests that need the demo data, never skip them
    root = tmp_path_factory.mktemp("demo") / "subsets"
    demo.make_demo_data(root, "subsets", classes=3, n_real=8, n_generated=8, n_test=2, size=64, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def demo_embedding_with_centroids(demo_dir):
    return _with_centroids([demo_dir / "train" / "real" / name for name in CLASSES])
