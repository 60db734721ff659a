"""scikit-learn heads on frozen features, stored as plain arrays and applied in pure NumPy.

``fit_head(kind, X, y)`` fits one of

- ``svm``     — ``SVC(kernel="rbf")`` (AIMultimediaLab 2025: ResNet-50 + SVM, 52 % on subsets);
- ``logreg``  — ``LogisticRegression`` (Medhastra);
- ``kmeans``  — ``KMeans(K)``, clusters mapped one-to-one to classes (Hungarian assignment on the
  training labels);
- ``agglomerative`` — ``AgglomerativeClustering(K)``, mapped the same way; new points go to the
  nearest cluster mean (agglomerative clustering has no ``predict`` of its own);

each behind an optional ``StandardScaler``, and returns ``(head, estimator)``: ``head`` is a
JSON-able dict (``ModelMeta.head``; arrays as base64 little-endian float64, so nothing is pickled
and values round-trip exactly), ``estimator`` the fitted scikit-learn object.

``apply_head(head, X) -> (predictions, scores)`` reproduces the estimator in NumPy: predictions are
class indices (``head["classes"]``, indices into ``ModelMeta.class_names``) equal to scikit-learn's
``predict``; scores are N×K with K = number of classes: ``predict_proba`` (logreg), the one-vs-rest
``decision_function`` (svm; for two classes column 1 is the decision value and column 0 its
negation), or minus the distance to the nearest cluster centre of each class (clusterings).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

HEADS = ("svm", "logreg", "kmeans", "agglomerative")


# ---------------------------------------------------------------------------------------------- arrays ↔ JSON
def encode_array(a) -> dict[str, Any]:
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    return {"dtype": "<f8", "shape": list(a.shape), "b64": base64.b64encode(a.astype("<f8").tobytes()).decode("ascii")}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    if not isinstance(d, dict) or "b64" not in d:
        raise ValueError(f"not an encoded array: {str(d)[:60]}")
    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).astype(np.float64)


# ---------------------------------------------------------------------------------------------- fitting
def fit_head(kind: str, X, y, *, seed: int = 0, standardize: bool = True, n_classes: int | None = None, **kwargs):
    """Fit head ``kind`` on features ``X`` (N×D) with class indices ``y``; returns ``(head, estimator)``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; expected one of {HEADS}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n_classes = int(n_classes if n_classes is not None else y.max() + 1)
    scaler = StandardScaler() if standardize else None
    Xs = scaler.fit_transform(X) if scaler is not None else X
    head: dict[str, Any] = {"type": kind, "n_features": int(X.shape[1])}
    if scaler is not None:
        head["scaler"] = {"mean": encode_array(scaler.mean_), "scale": encode_array(scaler.scale_)}
    if kind == "svm":
        from sklearn.svm import SVC

        est = SVC(kernel="rbf", gamma=kwargs.pop("gamma", "scale"), C=kwargs.pop("C", 1.0), random_state=seed, **kwargs).fit(Xs, y)
        head.update(
            classes=[int(c) for c in est.classes_],
            gamma=float(est._gamma),
            support_vectors=encode_array(est.support_vectors_),
            dual_coef=encode_array(est.dual_coef_),
            intercept=encode_array(est.intercept_),
            n_support=[int(n) for n in est.n_support_],
        )
    elif kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression(max_iter=kwargs.pop("max_iter", 2000), random_state=seed, **kwargs).fit(Xs, y)
        head.update(classes=[int(c) for c in est.classes_], coef=encode_array(est.coef_), intercept=encode_array(est.intercept_))
    else:
        if kind == "kmeans":
            from sklearn.cluster import KMeans

            est = KMeans(n_clusters=n_classes, n_init=kwargs.pop("n_init", 10), random_state=seed, **kwargs).fit(Xs)
            centers = est.cluster_centers_
            clusters = est.labels_
        else:
            from sklearn.cluster import AgglomerativeClustering

            est = AgglomerativeClustering(n_clusters=n_classes, **kwargs).fit(Xs)
            clusters = est.labels_
            centers = np.stack([Xs[clusters == c].mean(axis=0) for c in range(n_classes)])
        head.update(
            classes=list(range(n_classes)),
            centers=encode_array(centers),
            cluster_to_class=[int(c) for c in match_clusters(clusters, y, n_classes)],
        )
    if scaler is not None:
        est = make_pipeline(scaler, est)
    return head, est


def match_clusters(clusters, y, n_classes: int) -> np.ndarray:
    """Class of each cluster: the one-to-one assignment maximising agreement with ``y`` (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(clusters), np.asarray(y)), 1)
    rows, cols = linear_sum_assignment(-counts)
    mapping = np.zeros(n_classes, dtype=np.int64)
    mapping[rows] = cols
    return mapping


# ---------------------------------------------------------------------------------------------- applying
def apply_head(head: dict[str, Any], X) -> tuple[np.ndarray, np.ndarray]:
    """``(predictions, scores)`` of a stored head on features ``X`` (N×D), in NumPy only."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != head["n_features"]:
        raise ValueError(f"head expects N×{head['n_features']} features, got shape {X.shape}")
    if "scaler" in head:
        X = (X - decode_array(head["scaler"]["mean"])) / decode_array(head["scaler"]["scale"])
    kind = head["type"]
    classes = np.asarray(head["classes"], dtype=np.int64)
    if kind == "logreg":
        dec = X @ decode_array(head["coef"]).T + decode_array(head["intercept"])
        if dec.shape[1] == 1:
            d = dec[:, 0]
            p1 = _sigmoid(d)
            return classes[(d > 0).astype(np.int64)], np.stack([1.0 - p1, p1], axis=1)
        e = np.exp(dec - dec.max(axis=1, keepdims=True))
        return classes[np.argmax(dec, axis=1)], e / e.sum(axis=1, keepdims=True)
    if kind == "svm":
        return _apply_svm(head, X, classes)
    if kind in ("kmeans", "agglomerative"):
        centers = decode_array(head["centers"])
        d2 = (X * X).sum(1)[:, None] - 2.0 * X @ centers.T + (centers * centers).sum(1)[None, :]
        nearest = np.argmin(d2, axis=1)
        to_class = np.asarray(head["cluster_to_class"], dtype=np.int64)
        dist = np.sqrt(np.maximum(d2, 0.0))
        scores = np.full((len(X), len(classes)), -np.inf)
        for c, k in enumerate(to_class):
            scores[:, k] = np.maximum(scores[:, k], -dist[:, c])
        return classes[to_class[nearest]], scores
    raise ValueError(f"unknown head type {kind!r}; expected one of {HEADS}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def _apply_svm(head: dict[str, Any], X: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sv = decode_array(head["support_vectors"])
    dual = decode_array(head["dual_coef"])
    intercept = decode_array(head["intercept"])
    gamma = float(head["gamma"])
    d2 = (X * X).sum(1)[:, None] - 2.0 * X @ sv.T + (sv * sv).sum(1)[None, :]
    kernel = np.exp(-gamma * np.maximum(d2, 0.0))
    n_classes = len(classes)
    if n_classes == 2:
        # scikit-learn's public dual_coef_/intercept_ are sign-flipped for two classes: positive → classes[1]
        dec = kernel @ dual[0] + intercept[0]
        return classes[(dec >= 0).astype(np.int64)], np.stack([-dec, dec], axis=1)
    n_support = np.asarray(head["n_support"], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(n_support)])
    n_pairs = n_classes * (n_classes - 1) // 2
    dec = np.empty((len(X), n_pairs))
    votes = np.zeros((len(X), n_classes), dtype=np.int64)
    p = 0
    for i in range(n_classes):
        si = slice(start[i], start[i + 1])
        for j in range(i + 1, n_classes):
            sj = slice(start[j], start[j + 1])
            # libsvm's one-vs-one layout: class i's SVs use row j-1 of dual_coef, class j's use row i
            dec[:, p] = kernel[:, si] @ dual[j - 1, si] + kernel[:, sj] @ dual[i, sj] + intercept[p]
            win_i = dec[:, p] > 0
            votes[win_i, i] += 1
            votes[~win_i, j] += 1
            p += 1
    return classes[np.argmax(votes, axis=1)], _ovr_scores(dec, n_classes)


def _ovr_scores(dec: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's one-vs-one → one-vs-rest transform (``sklearn.utils.multiclass._ovr_decision_function``)."""
    predictions = (dec < 0).astype(np.int64)
    confidences = -dec
    votes = np.zeros((len(dec), n_classes))
    sums = np.zeros((len(dec), n_classes))
    k = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            sums[:, i] -= confidences[:, k]
            sums[:, j] += confidences[:, k]
            votes[predictions[:, k] == 0, i] += 1
            votes[predictions[:, k] == 1, j] += 1
            k += 1
    return votes + sums / (3 * (np.abs(sums) + 1))
