"""scikit-learn heads stored as arrays (no pickle) and applied in NumPy give scikit-learn's own answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fprt.trainer.heads import apply_head, decode_array, encode_array, fit_head


@pytest.fixture(scope="module", params=[2, 3, 5], ids=lambda k: f"K{k}")
def blobs(request):
    from sklearn.datasets import make_blobs

    k = request.param
    centers = np.random.default_rng(k).normal(0, 3, (k, 24))
    X, y = make_blobs(240, centers=centers, cluster_std=3.0, random_state=0)
    Xt, yt = make_blobs(150, centers=centers, cluster_std=4.0, random_state=1)
    # float32 like embeddings; fit_head and apply_head work in float64, so the oracle gets float64 too
    return X.astype(np.float32), y, Xt.astype(np.float32).astype(np.float64), yt, k


def _json_round_trip(head):
    return json.loads(json.dumps(head))


@pytest.mark.parametrize("kind", ["svm", "logreg"])
def test_supervised_heads_equal_sklearn(blobs, kind):
    X, y, Xt, _, k = blobs
    head, est = fit_head(kind, X, y, n_classes=k)
    pred, scores = apply_head(_json_round_trip(head), Xt)
    np.testing.assert_array_equal(pred, est.predict(Xt))
    if kind == "logreg":
        np.testing.assert_allclose(scores, est.predict_proba(Xt), rtol=0, atol=1e-12)
    else:
        ref = est.decision_function(Xt)
        ref = np.stack([-ref, ref], axis=1) if ref.ndim == 1 else ref
        np.testing.assert_allclose(scores, ref, rtol=0, atol=1e-9)


def test_kmeans_head_equals_sklearn_predict(blobs):
    X, y, Xt, _, k = blobs
    head, est = fit_head("kmeans", X, y, n_classes=k)
    pred, scores = apply_head(_json_round_trip(head), Xt)
    mapping = np.asarray(head["cluster_to_class"])
    np.testing.assert_array_equal(pred, mapping[est.predict(Xt)])
    assert sorted(mapping.tolist()) == list(range(k))  # one cluster per class
    np.testing.assert_array_equal(pred, scores.argmax(1))
    assert (pred[:] == blobs[3]).mean() > 0.9  # well-separated blobs: clusters found the classes


def test_agglomerative_head_is_nearest_cluster_mean(blobs):
    from sklearn.neighbors import NearestCentroid
    from sklearn.preprocessing import StandardScaler

    X, y, Xt, _, k = blobs
    head, est = fit_head("agglomerative", X, y, n_classes=k)
    clusters = est[-1].labels_
    scaler = StandardScaler().fit(X)
    oracle = NearestCentroid().fit(scaler.transform(X), clusters)
    mapping = np.asarray(head["cluster_to_class"])
    pred, _ = apply_head(_json_round_trip(head), Xt)
    np.testing.assert_array_equal(pred, mapping[oracle.predict(scaler.transform(Xt))])


def test_arrays_round_trip_exactly():
    a = np.random.default_rng(0).normal(size=(7, 3))
    np.testing.assert_array_equal(decode_array(json.loads(json.dumps(encode_array(a)))), a)


def test_head_rejects_wrong_feature_size(blobs):
    X, y, _, _, k = blobs
    head, _ = fit_head("logreg", X, y, n_classes=k)
    with pytest.raises(ValueError, match="expects N×24 features"):
        apply_head(head, np.zeros((2, 5)))
