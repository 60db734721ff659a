"""The report's charts as inline SVG (matplotlib's SVG backend): the score histogram with the decision
threshold drawn as an element the page (and its browser test) can find — ``<g id="threshold-line">`` —
and the ROC curve with its AUC."""

from __future__ import annotations

import io
import re
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _svg(fig, salt: str, css: str = "chart") -> str:
    """The figure as an inline <svg> element: no XML prolog, ids salted per figure so two charts in
    one page never share a clip-path id, text kept as text (small, searchable)."""
    plt = _pyplot()
    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    start = text.index("<svg")
    svg = text[start:]
    # the page sizes the chart: drop the fixed pt width/height, keep the viewBox
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', rf'<svg\1 class="{css}" role="img"', svg, count=1)
    return svg


def score_histogram(scores: np.ndarray, groups: dict[str, np.ndarray], threshold: float | None, xlabel: str,
                    threshold_label: str) -> str:
    """Histogram of ``scores`` split by ``groups`` (name → boolean mask), the threshold as a line."""
    plt = _pyplot()
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    values = scores[finite]
    bins = np.histogram_bin_edges(values, bins=50) if values.size else 10
    for name, mask in groups.items():
        v = scores[np.asarray(mask) & finite]
        if v.size:
            ax.hist(v, bins=bins, alpha=0.6, label=f"{name} (n={v.size:,})")
    if threshold is not None:
        ax.axvline(threshold, color="crimson", lw=2, ls="--", gid="threshold-line", label=threshold_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    return _svg(fig, "score-histogram")


def roc_curve_svg(truth: Sequence[int], scores: np.ndarray, label: str) -> tuple[str, float]:
    """ROC of ``scores`` against the 0/1 ``truth``; returns (svg, AUC) by scikit-learn."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    y = np.asarray(truth, dtype=int)
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    fpr, tpr, _ = roc_curve(y, s)
    auc = float(roc_auc_score(y, s))
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(fpr, tpr, gid="roc-curve", label=f"{label}: AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    return _svg(fig, "roc", "chart roc"), auc
