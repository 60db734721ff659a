"""Simple baselines that ``fprt train`` reports next to the model's validation metric, on the same
validation split, so a user sees at once whether the network adds anything.

One function per task, each taking the training strategy (its validation images and labels) and
returning ``{name: value}``; ``task_baselines`` dispatches. The values go to the console, to every row
of metrics.csv (columns ``baseline_<name>``) and to config.json under ``"baselines"``.

- membership: ``raw_pixel_nn_auc`` — ROC AUC of each held-out real image's best raw-pixel NCC (per-image
  zero-mean unit-norm pixels at 32×32) to the generated images; ``aligned_correlation_auc`` — ROC AUC
  of the best patch-wise aligned correlation (``fprt.runtime.evidence.geometry.patch_ncc``) over each
  real image's 3 nearest generated images by raw pixels.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def pool_pixels(pool, batch_size: int = 256) -> np.ndarray:
    """All images of an ``ImagePool`` as one N×S×S uint8 array."""
    return np.concatenate([b.numpy()[:, 0] for b in pool.batches(batch_size)])


def membership_pixel_baselines(real: np.ndarray, labels, generated: np.ndarray, k: int = 3) -> dict[str, float]:
    from fprt.trainer.training import _auc

    """(raw-pixel NN AUC, aligned-correlation AUC) of real images (labels 1 = used) against generated images."""
    from fprt.runtime.evidence.geometry import verification_images, verify_candidates
    from fprt.runtime.evidence.membership import pixel_vectors
    from fprt.runtime.methods.reductions import search

    found = search(pixel_vectors(real), pixel_vectors(generated), metric="cosine", k=min(k, len(generated)))
    aligned = verify_candidates(verification_images(real), verification_images(generated), found.row_indices).max(1)
    return {"raw_pixel_nn_auc": _auc(labels, found.row_values[:, 0]), "aligned_correlation_auc": _auc(labels, aligned)}


def membership_baselines(strategy) -> dict[str, float]:
    return membership_pixel_baselines(pool_pixels(strategy.val), strategy.val_labels, pool_pixels(strategy.val_generated))


BASELINES: dict[str, Callable] = {"membership": membership_baselines}


def task_baselines(task: str, strategy) -> dict[str, float]:
    """The simple baselines of ``task`` on the strategy's validation split ({} for a task without any)."""
    fn = BASELINES.get(task)
    return fn(strategy) if fn is not None else {}
