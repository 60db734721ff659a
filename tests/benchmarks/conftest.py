"""Fixtures of the benchmark-tooling tests: a tiny demo dataset and a tiny Siamese CNN run, made once.

The model is a DETERMINISTIC UNTRAINED ``siamese_cnn`` (seed 0, 64×64 input, 32-d embedding) whose class
centroids are the mean embeddings of the demo's real training images, so every scoring path runs; the
tests check the structure and the sanity of ``fprt bench``'s table, never timings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_tiny_run(data: Path, out: Path) -> Path:
    """An untrained siamese_cnn run folder (model.safetensors with its ModelMeta) for ``data``'s classes."""
    import torch

    from fprt.data import discover, iter_batches
    from fprt.modelmeta import ModelMeta
    from fprt.preprocess import Preprocess
    from fprt.trainer import create_model
    from fprt.trainer.checkpoint import save_weights

    torch.manual_seed(0)
    kwargs = {"input_size": 64, "embedding_dim": 32}
    model = create_model("siamese_cnn", **kwargs).eval()
    pre = Preprocess(size=64)
    layout = discover(data)
    centroids = []
    for cls in layout.classes:
        px = np.concatenate([b.pixels for b in iter_batches(layout.real[cls], pre, 64, 0)])
        with torch.inference_mode():
            centroids.append(model(torch.from_numpy(pre.normalize_uint8(px))).mean(0).tolist())
    meta = ModelMeta(model="siamese_cnn", kind="embedding", task="subsets", preprocess=pre, class_names=list(layout.classes),
                     model_kwargs=kwargs, metric="l2", embedding_dim=32, centroids=centroids)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / "model.safetensors", model, meta)
    return out


@pytest.fixture(scope="session")
def tiny_bench_setup(tmp_path_factory):
    """``(data, run)``: 3 subsets × (8 real + 8 generated) training images, 12 labelled test images, 64×64."""
    from fprt.demo import make_demo_data

    root = tmp_path_factory.mktemp("bench-tiny")
    data = root / "data"
    make_demo_data(data, "subsets", classes=3, n_real=8, n_generated=8, n_test=4, size=64, workers=1, progress=False)
    return data, make_tiny_run(data, root / "run")
