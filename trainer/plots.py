"""Plots of a training run (matplotlib, Agg backend, written atomically as PNG):

- ``plot_curves``: training loss and the validation metric per epoch;
- ``plot_confusion``: the validation confusion matrix;
- ``plot_pca``: a 2-D PCA of embeddings or features, coloured by class, real and generated marked apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fprt.io import atomic_open


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(*args, **kwargs)


def _save(plt, fig, path: Path) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(history: Sequence[dict], path: str | Path, *, metric: str = "val_metric", title: str = "") -> Path:
    def num(v):
        return float(v) if v not in (None, "") else np.nan

    plt, fig = _figure(figsize=(8, 3.4))
    epochs = [int(r["epoch"]) for r in history]
    ax1 = fig.add_subplot(1, 2, 1)
    ax1.plot(epochs, [num(r.get("train_loss")) for r in history], marker="o", label="train loss")
    if any(r.get("val_loss") not in (None, "") for r in history):
        ax1.plot(epochs, [num(r.get("val_loss")) for r in history], marker="o", label="val loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2 = fig.add_subplot(1, 2, 2)
    name = history[0].get("val_metric_name", metric) if history else metric
    ax2.plot(epochs, [num(r.get("val_metric")) for r in history], marker="o", color="tab:green")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"validation {name}")
    ax2.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_confusion(matrix, labels: Sequence[str], path: str | Path, *, title: str = "validation confusion matrix") -> Path:
    cm = np.asarray(matrix)
    plt, fig = _figure(figsize=(1.2 + 0.7 * len(labels), 1.0 + 0.6 * len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels=list(labels))
    ax.set_yticks(range(len(labels)), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = cm.max() if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > peak / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    return _save(plt, fig, path)


def plot_pca(features, labels, class_names: Sequence[str], path: str | Path, *, groups=None,
             title: str = "PCA of embeddings") -> Path:
    """2-D PCA scatter; ``groups`` (e.g. "real"/"generated" per row) sets the marker."""
    from sklearn.decomposition import PCA

    X = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    xy = PCA(n_components=2, random_state=0).fit_transform(X) if len(X) > 2 else np.zeros((len(X), 2))
    plt, fig = _figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    groups = np.asarray(groups) if groups is not None else np.asarray(["all"] * len(X))
    markers = dict(zip(sorted(set(groups.tolist())), "o^sPD*"))
    cmap = plt.get_cmap("tab10")
    for k, name in enumerate(class_names):
        for g, marker in markers.items():
            sel = (labels == k) & (groups == g)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, alpha=0.7, marker=marker, color=cmap(k % 10),
                           label=f"{name} ({g})" if len(markers) > 1 else name)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=7, markerscale=1.2, loc="best")
    ax.set_title(title)
    return _save(plt, fig, path)
