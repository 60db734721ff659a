import numpy as np
import pytest
from sklearn import metrics as skm

from fprt.metrics import binary_metrics, multiclass_metrics, tpr_at_fpr


def _independent_tpr_at_fpr(y, s, target):
    """Sweep every threshold by hand: best TPR over thresholds whose FPR ≤ target."""
    best = 0.0
    pos, neg = (y == 1).sum(), (y == 0).sum()
    for t in np.concatenate([[np.inf], np.unique(s)]):
        pred = s >= t
        fpr = (pred & (y == 0)).sum() / neg
        if fpr <= target:
            best = max(best, (pred & (y == 1)).sum() / pos)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_sklearn_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = y + rng.normal(0, 1.2, 500)
    p = (s > 0.5).astype(int)
    m = binary_metrics(y, p, s)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p))
    assert m["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, p))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    tn, fp, fn, tp = skm.confusion_matrix(y, p).ravel()
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["confusion_matrix"] == [[tn, fp], [fn, tp]]
    assert m["tpr_at_1pct_fpr"] == pytest.approx(_independent_tpr_at_fpr(y, s, 0.01))
    assert m["tpr_at_0.1pct_fpr"] == pytest.approx(_independent_tpr_at_fpr(y, s, 0.001))


def test_tpr_at_fpr_perfect_and_useless_scores():
    y = np.array([0, 0, 0, 1, 1])
    assert tpr_at_fpr(y, [0.1, 0.2, 0.3, 0.8, 0.9], 0.0) == 1.0
    assert tpr_at_fpr(y, [0.9, 0.8, 0.7, 0.1, 0.2], 0.01) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = [f"t{i}" for i in range(1, 6)]
    y = rng.choice(labels, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.choice(labels, 300))
    m = multiclass_metrics(y, p, labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(y, p, average="macro"))
    assert m["recall_macro"] == pytest.approx(skm.recall_score(y, p, average="macro"))
    assert m["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, p))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, p, labels=labels).tolist()
    assert m["labels"] == labels
    assert sum(map(sum, m["confusion_matrix"])) == 300


def test_edge_cases_are_explicit():
    # one class only: AUC and kappa are undefined, reported as None (not a made-up number)
    m = binary_metrics([1, 1, 1], [1, 1, 1], [0.2, 0.5, 0.9])
    assert m["roc_auc"] is None and m["cohen_kappa"] is None and m["accuracy"] == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        multiclass_metrics([], [])
