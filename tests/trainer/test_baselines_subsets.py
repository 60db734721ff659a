"""``fprt train`` reports the simple subsets baseline — logistic regression on 32×32 pixels — on the
same validation split as the model's metric: console line data, metrics.csv columns, config.json.
Oracle: scikit-learn fitted here on pixels PIL averages down, on the split ``validation_split`` draws."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fprt.trainer import TrainConfig, train
from fprt.trainer.pairs import validation_split

FAST = dict(family="siamese", size=64, epochs=1, batch_size=16, lr=1e-3, patience=0, steps_per_epoch=2, progress=False)


def _oracle(data, tr, va, fit_on_real: bool) -> float:
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def small(pool):
        px = pool.get(np.arange(len(pool)))[:, 0].numpy()
        return np.stack([np.asarray(Image.fromarray(p.astype(np.float32), mode="F").resize((32, 32), Image.Resampling.BOX))
                         for p in px]).reshape(len(px), -1) / 255.0

    gen, y = small(data.generated), data.generated_labels
    x, labels = (small(data.real), data.real_labels) if fit_on_real else (gen[tr], y[tr])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, labels)
    return float((model.predict(gen[va]) == y[va]).mean())


@pytest.fixture(scope="module")
def blobs_data():
    """Subsets TaskData of 64×64 images: 3 subsets told apart by where a bright blob sits (with noise)."""
    from fprt.trainer.datasets import TaskData

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]

    def images(n, c, noise):
        cx = 16 + 16 * c
        out = []
        for _ in range(n):
            x0, y0 = cx + rng.normal(0, 6), 32 + rng.normal(0, 6)
            im = 80 + 100 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 120.0) + rng.normal(0, noise, (64, 64))
            out.append(np.clip(im, 0, 255).astype(np.uint8))
        return np.stack(out)

    real = np.concatenate([images(10, c, 10) for c in range(3)])
    gen = np.concatenate([images(20, c, 20) for c in range(3)])
    return TaskData.from_pixels("subsets", ["t1", "t2", "t3"], real, np.repeat(np.arange(3), 10), gen, np.repeat(np.arange(3), 20))


def test_train_reports_the_pixel_baseline_on_the_same_validation_split(tmp_path, blobs_data):
    result = train(blobs_data, tmp_path / "run", TrainConfig(**FAST, val_fraction=0.3))
    tr, va = validation_split(blobs_data.generated_labels, 0.3, 0)
    expect = {"pixel_logreg_generated": _oracle(blobs_data, tr, va, False),
              "pixel_logreg_real": _oracle(blobs_data, tr, va, True)}
    got = {name: b["val_metric"] for name, b in result.baselines.items()}
    assert got == pytest.approx(expect, abs=1e-9)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {n: b["val_metric"] for n, b in config["baselines"].items()} == pytest.approx(expect)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert all(float(r["baseline_pixel_logreg_generated"]) == pytest.approx(expect["pixel_logreg_generated"], abs=1e-6)
               for r in rows)
    assert expect["pixel_logreg_generated"] > 0.5  # the data let a pixel model work: the numbers mean something
    assert result.baselines["pixel_logreg_generated"]["fitted_on"] == f"{len(tr)} generated training images"
