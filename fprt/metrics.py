"""Task metrics: the ImageCLEFmedical GANs measures, computed by scikit-learn.

- ``binary_metrics`` (membership: 1 = used, 0 = not used): accuracy, precision, recall, F1,
  specificity, Cohen's κ, confusion matrix and, given continuous scores, ROC AUC and the TPR at
  1 % and 0.1 % FPR.
- ``multiclass_metrics`` (subsets): accuracy, macro precision / recall / F1 / specificity, Cohen's κ,
  confusion matrix, per-class precision, recall, F1 and specificity (one class against the rest, as both
  2025 subsets papers report it: TN / (TN + FP)).

Both return plain JSON-serialisable dicts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def tpr_at_fpr(y_true, scores, fpr_target: float) -> float:
    """Largest true-positive rate reached at a false-positive rate ≤ ``fpr_target`` (ROC step function)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y_true), np.asarray(scores, dtype=np.float64))
    ok = fpr <= fpr_target
    return float(tpr[ok].max()) if ok.any() else 0.0


def binary_metrics(y_true, y_pred, scores=None) -> dict:
    """Membership metrics; ``scores`` (larger = more likely used) adds ROC AUC and TPR at low FPR."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    _check_same_length(y_true, y_pred)
    cm = skm.confusion_matrix(y_true, y_pred, labels=[0, 1])
    tn, fp = int(cm[0, 0]), int(cm[0, 1])
    out = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "specificity": float(tn / (tn + fp)) if tn + fp else 0.0,
        "cohen_kappa": _kappa(y_true, y_pred),
        "confusion_matrix": cm.tolist(),
        "labels": [0, 1],
    }
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        _check_same_length(y_true, scores)
        if len(np.unique(y_true)) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, scores))
            out["tpr_at_1pct_fpr"] = tpr_at_fpr(y_true, scores, 0.01)
            out["tpr_at_0.1pct_fpr"] = tpr_at_fpr(y_true, scores, 0.001)
        else:
            out["roc_auc"] = None  # undefined with one class present
    return out


def multiclass_metrics(y_true, y_pred, labels: Sequence | None = None) -> dict:
    """Subsets metrics over ``labels`` (default: the sorted union of both label sets)."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    _check_same_length(y_true, y_pred)
    if labels is None:
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    labels = list(labels)
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    recall = skm.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    precision = skm.precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    f1 = skm.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    specificity = _specificity_per_class(cm)
    names = [str(_plain(k)) for k in labels]
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision_macro": float(skm.precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "cohen_kappa": _kappa(y_true, y_pred, labels),
        "confusion_matrix": cm.tolist(),
        "labels": [_plain(x) for x in labels],
        "specificity_macro": float(np.mean(specificity)),
        "recall_per_class": dict(zip(names, map(float, recall))),
        "precision_per_class": dict(zip(names, map(float, precision))),
        "f1_per_class": dict(zip(names, map(float, f1))),
        "specificity_per_class": dict(zip(names, map(float, specificity))),
    }


def _specificity_per_class(cm: np.ndarray) -> np.ndarray:
    """One-vs-rest specificity TN / (TN + FP) of each class from a confusion matrix (rows: truth); 0 when undefined."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    tn = cm.sum() - cm.sum(axis=1) - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tn + fp > 0, tn / np.maximum(tn + fp, 1e-300), 0.0)


def _kappa(y_true, y_pred, labels=None) -> float | None:
    import warnings

    from sklearn.metrics import cohen_kappa_score

    # κ is undefined (0/0) when both raters use one and the same label: reported as None, not 0.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns before returning NaN
        value = cohen_kappa_score(y_true, y_pred, labels=labels)
    return float(value) if np.isfinite(value) else None


def _check_same_length(a, b) -> None:
    if len(a) != len(b):
        raise ValueError(f"metric inputs differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise ValueError("metric inputs are empty")


def _plain(x):
    return x.item() if hasattr(x, "item") else x
