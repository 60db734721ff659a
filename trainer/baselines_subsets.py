"""The simple subsets baseline ``fprt train`` reports next to the model's validation metric.

A logistic regression (scikit-learn, standardised inputs) on the raw pixels area-averaged to 32×32,
fitted on the generated training images the model trains on and scored on the SAME held-out
generated images as the model's validation accuracy (``fprt.trainer.pairs.validation_split`` with the
run's ``val_fraction`` and ``seed``); a second fit on the real images of each subset (the setting of
a classifier trained on real subsets). If the net does not beat these, it adds nothing.
"""

from __future__ import annotations

import numpy as np

from fprt.trainer.pairs import validation_split

SMALL = 32


def _small_pixels(pool, chunk: int = 512) -> np.ndarray:
    from fprt.runtime.evidence.fingerprint import small_pixels

    parts = [small_pixels(pool.get(np.arange(i, min(i + chunk, len(pool))))[:, 0].numpy(), SMALL)
             for i in range(0, len(pool), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, SMALL * SMALL), np.float32)


def subsets_baselines(data, val_fraction: float, seed: int) -> dict[str, dict]:
    """``{name: {"val_metric_name": "accuracy", "val_metric": float, "fitted_on": str, "what": str}}``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tr, va = validation_split(data.generated_labels, val_fraction, seed)
    gen = _small_pixels(data.generated)
    y = data.generated_labels
    out = {}
    fits = {"pixel_logreg_generated": (gen[tr], y[tr], f"{len(tr)} generated training images"),
            "pixel_logreg_real": (None, data.real_labels, f"{len(data.real_labels)} real images")}
    for name, (x, labels, fitted_on) in fits.items():
        if x is None:
            x = _small_pixels(data.real)
        if len(np.unique(labels)) < 2:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, labels)
        acc = float((model.predict(gen[va]) == y[va]).mean())
        out[name] = {"val_metric_name": "accuracy", "val_metric": acc, "fitted_on": fitted_on,
                     "what": f"logistic regression on {SMALL}x{SMALL} pixels, same validation split"}
    return out
