"""Subsets specificity (issue 14: both 2025 subsets papers report it), per class and macro, against scikit-learn's
one-vs-rest confusion matrices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import multilabel_confusion_matrix, precision_score

from fprt.metrics import multiclass_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_specificity_per_class_and_macro(seed):
    rng = np.random.default_rng(seed)
    labels = ["t1", "t2", "t3", "t4", "t5"]
    truth = rng.choice(labels, 149)
    pred = np.where(rng.random(149) < 0.6, truth, rng.choice(labels, 149))
    m = multiclass_metrics(truth, pred, labels=labels)
    mcm = multilabel_confusion_matrix(truth, pred, labels=labels)  # per class [[tn, fp], [fn, tp]]
    expected = {c: mcm[i, 0, 0] / (mcm[i, 0, 0] + mcm[i, 0, 1]) for i, c in enumerate(labels)}
    assert m["specificity_per_class"] == pytest.approx(expected)
    assert m["specificity_macro"] == pytest.approx(np.mean(list(expected.values())))
    assert m["precision_per_class"] == pytest.approx(
        dict(zip(labels, precision_score(truth, pred, labels=labels, average=None, zero_division=0))))


@pytest.mark.filterwarnings("ignore:A single label was found")
def test_specificity_of_a_class_nobody_is_outside_is_zero_not_nan():
    m = multiclass_metrics(["t1", "t1"], ["t1", "t1"], labels=["t1"])
    assert m["specificity_per_class"] == {"t1": 0.0} and m["specificity_macro"] == 0.0
