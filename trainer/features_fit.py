"""``fprt train features``: frozen backbone features + a scikit-learn head (no gradient steps).

- subsets: features of the real images and of the training part of the generated images (the same
  stratified split as every other family) fit the head (``svm``, ``logreg``, ``kmeans``,
  ``agglomerative``); validation accuracy on the held-out generated images. The real images' class
  centroids are stored too, so nearest-centroid scoring works on the same features.
- membership (Medhastra 2025): each real image is scored by its highest cosine similarity to the
  generated images; the threshold with the best accuracy on the training part of the real images is
  stored, the AUC is measured on the held-out part. No head.

The head lives in ``ModelMeta.head`` as arrays; the backbone's weights in ``model.safetensors``.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import torch

from fprt.errors import FprtError
from fprt.modelmeta import ModelMeta
from fprt.trainer.heads import HEADS, apply_head, fit_head
from fprt.trainer.pairs import validation_split


@torch.no_grad()
def _features(model, pool, pre, device, batch_size: int, desc: str, show) -> np.ndarray:
    from fprt.progress import progress

    bar = progress(total=len(pool), desc=desc, unit="img", disable=None if show is None else not show)
    outs = []
    for x in pool.batches(batch_size):
        outs.append(model(pre(x.to(device))).float().cpu().numpy())
        bar.update(len(x))
    bar.close()
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, 0), np.float32)


def train_features(model, data, cfg, spec, device, pre, run, doc, base_meta, started, *, resume=False):
    from fprt.trainer.training import TrainResult, _auc, _write_plots, baseline_columns, best_threshold

    if cfg.head not in HEADS:
        raise FprtError(f"--head must be one of {HEADS}, got {cfg.head!r}")
    model.eval()
    t0 = time.perf_counter()
    real = _features(model, data.real, pre, device, cfg.eval_batch_size, "features real", cfg.progress)
    gen = _features(model, data.generated, pre, device, cfg.eval_batch_size, "features generated", cfg.progress)
    k = len(data.class_names)
    fields: dict = {}
    if data.task == "subsets":
        tr, va = validation_split(data.generated_labels, cfg.val_fraction, cfg.seed)
        X = np.concatenate([real, gen[tr]])
        y = np.concatenate([data.real_labels, data.generated_labels[tr]])
        head, _ = fit_head(cfg.head, X, y, seed=cfg.seed, n_classes=k)
        pred, _ = apply_head(head, gen[va])
        val_labels = data.generated_labels[va]
        metric_name, metric = "accuracy", float((pred == val_labels).mean())
        centroids = np.stack([real[data.real_labels == c].mean(0) for c in range(k)])
        fields = {"head": head, "centroids": centroids.astype(np.float64).tolist()}
        val = {"pred": pred, "val_emb": gen[va], "real_emb": real, "real_labels": data.real_labels}
    else:
        tr, va = validation_split(data.real_labels, cfg.val_fraction, cfg.seed)
        g = gen / np.maximum(np.linalg.norm(gen, axis=1, keepdims=True), 1e-12)
        r = real / np.maximum(np.linalg.norm(real, axis=1, keepdims=True), 1e-12)
        best = (r @ g.T).max(axis=1)
        thr, _ = best_threshold(best[tr], data.real_labels[tr], larger_is_positive=True)
        val_labels = data.real_labels[va]
        metric_name, metric = "auc", _auc(val_labels, best[va])
        pred = (best[va] >= thr).astype(np.int64)
        fields = {"threshold": float(thr),
                  "extra": {"threshold_rule": "used when the max cosine over generated images >= threshold",
                            "threshold_score": "max_cosine_to_generated"}}
        val = {"pred": pred, "val_emb": real[va], "real_emb": gen, "real_labels": np.ones(len(gen), dtype=np.int64)}
    extra = {"family": "features", "head": cfg.head if data.task == "subsets" else None,
             "val_metric_name": metric_name, "val_metric": metric, "best_epoch": 1, **fields.pop("extra", {})}
    meta = ModelMeta(**base_meta, **fields, extra=extra)
    history = [{"epoch": 1, "train_loss": "", "val_metric_name": metric_name, "val_metric": metric,
                "val_loss": "", "lr": "", "steps": 0, "seconds": time.perf_counter() - t0,
                **baseline_columns(doc.get("baselines", {}))}]
    doc = {**doc, "data": {**doc["data"], "train_items": int(len(tr) + (len(real) if data.task == "subsets" else 0)),
                           "val_items": int(len(va))}}
    run.write_metrics(history)
    best = {"epoch": 1, "val_metric_name": metric_name, "val_metric": metric}
    meta = run.save_model(model, meta, {**doc, "status": "finished", "best": best})
    strategy = SimpleNamespace(cfg=cfg, val_labels=val_labels)
    _write_plots(run, [], data, strategy, val)
    return TrainResult(run.root, meta, history, 1, metric, metric_name, "finished", time.perf_counter() - started,
                       doc.get("baselines", {}))
