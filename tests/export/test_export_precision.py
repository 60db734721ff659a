"""Parity bars, the INT8 accuracy gate's arithmetic and the per-model CPU precision, on hand-made outputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cosine as scipy_cosine_distance

from fprt.export.images import ImageSet
from fprt.export.parity import BARS, compare_output, row_cosine
from fprt.export.precision import Int8Gate, int8_gate, recommended_cpu_precision
from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess


def test_row_cosine_matches_scipy_and_handles_zero_rows():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    expected = [1 - scipy_cosine_distance(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(row_cosine(a, b), expected, atol=1e-12)
    z = np.zeros((2, 5))
    np.testing.assert_array_equal(row_cosine(z, z), [1.0, 1.0])  # ReLU'd all-zero embeddings agree
    np.testing.assert_array_equal(row_cosine(z, a[:2]), [0.0, 0.0])


def test_compare_output_bars():
    ref = np.eye(3, dtype=np.float32)
    assert compare_output("embedding", ref, ref + 5e-5, BARS["fp32"])["passed"]
    assert not compare_output("embedding", ref, ref + 2e-4, BARS["fp32"])["passed"]
    logits = ref * 1000  # logits: the fp32 bar scales with their magnitude
    assert compare_output("logits", logits, logits + 0.05, BARS["fp32"])["passed"]
    fig = compare_output("embedding", ref, ref + 0.01, BARS["fp16"])
    assert fig["passed"] and fig["min_cosine"] < 1
    assert not compare_output("embedding", ref, ref[::-1].copy(), BARS["int8"])["passed"]
    assert not compare_output("probability", np.zeros(4), np.full(4, 0.06), BARS["int8"])["passed"]
    bad = compare_output("embedding", ref, np.full((3, 3), np.nan), BARS["fp32"])
    assert not bad["passed"] and "non-finite" in bad["problem"]
    assert "shape" in compare_output("embedding", ref, ref[:2], BARS["fp32"])["problem"]


def _meta(kind="classifier", **kw):
    return ModelMeta(model="m", kind=kind, task="subsets", preprocess=Preprocess(size=8), class_names=["t1", "t2", "t3"], **kw)


def test_gate_accuracy_drop_against_labels():
    labels = ["t1", "t2", "t3"] * 20  # 60 images
    y = np.array([0, 1, 2] * 20)
    ref = np.eye(3)[y] * 5.0
    ref[:3] = np.eye(3)[[1, 2, 0]] * 5.0  # fp32 is wrong on 3 images: accuracy 57/60
    got = ref.copy()
    got[3:5] = np.eye(3)[[2, 0]] * 5.0  # int8 flips 2 more correct answers: 55/60
    got = got * 0.999 + 0.001  # close enough in cosine
    images = ImageSet(np.zeros((60, 8, 8), np.uint8), source="test", labels=labels)
    r = int8_gate({"logits": ref}, {"logits": got}, _meta(), images, Int8Gate(max_drop=0.05, min_cosine=0.0))
    assert r.accuracy_fp32 == pytest.approx(57 / 60) and r.accuracy_int8 == pytest.approx(55 / 60)
    assert r.passed and r.agreement == pytest.approx(58 / 60)
    r = int8_gate({"logits": ref}, {"logits": got}, _meta(), images, Int8Gate(max_drop=0.02, min_cosine=0.0))
    assert not r.passed and "accuracy drop 0.0333 > 0.02" in r.problems[0]


def test_gate_nearest_centroid_without_labels_uses_agreement():
    rng = np.random.default_rng(1)
    cents = np.eye(4)[:3]
    emb = cents[rng.integers(0, 3, 40)] + rng.normal(0, 0.05, (40, 4))
    meta = _meta("embedding", centroids=cents.tolist(), metric="l2")
    images = ImageSet(np.zeros((40, 8, 8), np.uint8), source="test")
    r = int8_gate({"embedding": emb}, {"embedding": emb + 1e-4}, meta, images)
    assert r.passed and r.rule == "nearest centroid" and r.accuracy_fp32 is None and r.agreement == 1.0
    moved = emb.copy()
    moved[:5] = cents[(np.argmin(((emb[:5, None] - cents) ** 2).sum(-1), 1) + 1) % 3]  # 5 decisions change
    r = int8_gate({"embedding": emb}, {"embedding": moved}, meta, images, Int8Gate(min_cosine=-1.0))
    assert not r.passed and r.agreement == pytest.approx(35 / 40) and "agreement" in r.problems[0]


def test_gate_cosine_bound():
    emb = np.random.default_rng(2).normal(size=(10, 6))
    noisy = emb.copy()
    noisy[0] = -noisy[0]
    r = int8_gate({"embedding": emb}, {"embedding": noisy}, _meta("embedding"), ImageSet(np.zeros((10, 8, 8), np.uint8), source="t"))
    assert not r.passed and r.min_cosine == pytest.approx(-1.0) and "row cosine" in r.problems[0]


@pytest.mark.parametrize(
    "model, kwargs, expected",
    [
        ("siamese_cnn", {}, "fp32"),
        ("classifier_resnet18", {}, "int8"),
        ("siamese_resnet50", {}, "int8"),
        ("features_efficientnet_b0", {}, "int8"),
        ("pair_xattn", {}, "int8"),
        ("pair_xattn", {"backbone": "cnn"}, "fp32"),
    ],
)
def test_recommended_cpu_precision(model, kwargs, expected):
    meta = ModelMeta(model=model, kind="embedding", task="subsets", preprocess=Preprocess(), class_names=["t1"], model_kwargs=kwargs)
    assert recommended_cpu_precision(meta) == expected


def test_neighbour_recall_against_brute_force():
    from fprt.export.precision import neighbour_recall

    rng = np.random.default_rng(3)
    ref = rng.normal(size=(30, 8))
    got = ref + rng.normal(0, 0.3, ref.shape)
    d32 = ((ref[:, None] - ref[None]) ** 2).sum(-1)
    d8 = ((got[:, None] - got[None]) ** 2).sum(-1)
    np.fill_diagonal(d32, np.inf)
    np.fill_diagonal(d8, np.inf)
    nn = d32.argmin(1)
    hits = [nn[i] in np.argsort(d8[i])[:5] for i in range(30)]
    assert neighbour_recall(ref, got, "l2") == pytest.approx(np.mean(hits))
    assert neighbour_recall(ref, ref, "l2") == 1.0
    assert 0 < neighbour_recall(ref, got, "l2", k=1) <= neighbour_recall(ref, got, "l2", k=5)
