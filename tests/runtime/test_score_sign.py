"""One sign convention for the ``score`` column in both tasks (issue 14): larger = more likely the
decision taken (membership: used; subsets: the chosen subset), in every method, for every metric.

Easy data where the answer is known: membership — half the real images have near-copies among the
generated images (used), the other half none; subsets — half the test points sit on their subset's
centroid (clear cases), half half-way between two subsets (ambiguous). The score must rank the used /
clear cases above the others (ROC AUC, scikit-learn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess
from fprt.runtime.methods import get_method, method_names
from fprt.runtime.methods.base import SCORE_CONVENTION, Context, ImageSet, MethodOptions
from fprt.runtime.methods.classical import PhashFeatures

SIZE, POOL = 32, 4
NEEDS_FILES = {"auto"}  # reads image files: its sign is checked end to end in test_auto_subsets / the auto tests


def _images(rng, n):
    from PIL import Image

    out = []
    for _ in range(n):
        coarse = rng.normal(128, 50, size=(6, 6)).clip(0, 255).astype(np.uint8)
        im = np.asarray(Image.fromarray(coarse).resize((SIZE, SIZE), Image.Resampling.BICUBIC), dtype=np.float64)
        out.append((im + rng.normal(0, 3, im.shape)).clip(0, 255).astype(np.uint8))
    return np.stack(out)


def _pool(px):
    n = len(px)
    return px.astype(np.float32).reshape(n, SIZE // POOL, POOL, SIZE // POOL, POOL).mean((2, 4)).reshape(n, -1) / 255.0 - 0.5


def _membership_split(rng, n_real=20, n_extra=4):
    real = _images(rng, n_real)
    used = np.arange(n_real) % 2 == 0
    copies = np.clip(real[used].astype(np.float64) + rng.normal(0, 2, real[used].shape), 0, 255).astype(np.uint8)
    gen = np.concatenate([copies, _images(rng, n_extra)])
    return real, gen, used


class _PairBackend:
    """Stands in for a pair model: probability = sigmoid(8·cos) of the pooled images."""

    def pair_probability(self, a, b):
        ea, eb = _pool(a), _pool(b)
        cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
        return 1 / (1 + np.exp(-8 * cos))


def _membership_ctx(metric):
    rng = np.random.default_rng(0)
    real, gen, used = _membership_split(rng)
    ref_real, ref_gen, ref_used = _membership_split(rng)
    arrays = {"test": real, "test_generated": gen, "ref_real": ref_real, "ref_generated": ref_gen}
    labels = {"ref_real": ["used" if u else "not_used" for u in ref_used]}
    sets, outputs, pixels_of = {}, {}, {}
    for name, px in arrays.items():
        paths = [Path(f"{name}_{i}.png") for i in range(len(px))]
        pixels_of.update({p: im for p, im in zip(paths, px)})
        sets[name] = ImageSet(name, paths, labels.get(name))
        outputs[name] = {"embedding": _pool(px), "pixels": px, "phash": PhashFeatures(SIZE).infer(px)["phash"]}
    meta = ModelMeta(model="t", kind="embedding", task="membership", preprocess=Preprocess(size=SIZE),
                     class_names=["not_used", "used"], metric=metric, threshold=0.9 if metric == "cosine" else None)
    ctx = Context(task="membership", classes=["0", "1"], metric=metric, meta=meta, options=MethodOptions(k=3, ssim_size=SIZE),
                  sets=sets, outputs=outputs, backend=_PairBackend(),
                  load_pixels=lambda paths: np.stack([pixels_of[Path(p)] for p in paths]))
    return ctx, used


@pytest.mark.parametrize("metric", ("cosine", "l2", "ip"))
def test_membership_score_is_larger_for_used_images(metric):
    ctx, used = _membership_ctx(metric)
    checked = []
    for name in method_names("membership"):
        if name in NEEDS_FILES or (name == "max-threshold" and ctx.meta.threshold is None):
            continue
        res = get_method(name, "membership").score(ctx)
        assert res.larger_means == "more likely used", name
        auc = roc_auc_score(used, res.score)
        assert auc > 0.9, f"{name} ({metric}): ROC AUC of score for used = {auc:.3f}"
        checked.append(name)
    assert {"max-sigma", "vcmi-max", "vcmi-std", "logreg", "pair", "ssim-max", "phash"} <= set(checked)


def _subsets_ctx(metric, kind="embedding"):
    rng = np.random.default_rng(1)
    k, d = 3, 8
    cents = rng.standard_normal((k, d))
    cents *= 8 / np.linalg.norm(cents, axis=1, keepdims=True)  # equal norms: no subset wins an inner product by size
    clear = np.repeat(np.arange(k), 6)
    a, b = clear, (clear + 1) % k
    test = np.concatenate([cents[clear] + 0.05 * rng.standard_normal((len(clear), d)),
                           0.5 * (cents[a] + cents[b]) + 0.05 * rng.standard_normal((len(clear), d))]).astype(np.float32)
    is_clear = np.r_[np.ones(len(clear)), np.zeros(len(clear))].astype(bool)
    ref_lab = np.repeat(np.arange(k), 40)
    ref = (cents[ref_lab] + 1.5 * rng.standard_normal((len(ref_lab), d))).astype(np.float32)
    logits = -((test[:, None, :] - cents[None]) ** 2).sum(-1)  # a classifier that knows the centroids
    classes = [f"t{i + 1}" for i in range(k)]
    meta = ModelMeta(model="t", kind=kind, task="subsets", preprocess=Preprocess(size=SIZE), class_names=classes,
                     metric=metric, centroids=cents.tolist())
    sets = {"test": ImageSet("test", [Path(f"u{i}") for i in range(len(test))]),
            "ref_all": ImageSet("ref_all", [Path(f"r{i}") for i in range(len(ref))], [classes[c] for c in ref_lab]),
            "ref_real": ImageSet("ref_real", [Path(f"r{i}") for i in range(len(ref))], [classes[c] for c in ref_lab])}
    outputs = {"test": {"embedding": test, "logits": logits.astype(np.float32)},
               "ref_all": {"embedding": ref}, "ref_real": {"embedding": ref}}
    return Context(task="subsets", classes=classes, metric=metric, meta=meta, options=MethodOptions(k=15), sets=sets,
                   outputs=outputs), is_clear


@pytest.mark.parametrize("metric", ("cosine", "l2", "ip"))
def test_subsets_score_is_larger_for_clear_cases(metric):
    checked = []
    for name in method_names("subsets"):
        if name in NEEDS_FILES:
            continue
        ctx, is_clear = _subsets_ctx(metric, kind="classifier" if name == "classifier" else "embedding")
        res = get_method(name, "subsets").score(ctx)
        assert res.larger_means == "more likely the chosen subset", name
        auc = roc_auc_score(is_clear, res.score)
        assert auc > 0.9, f"{name} ({metric}): ROC AUC of score for clear cases = {auc:.3f}"
        checked.append(name)
    assert {"centroid", "knn", "classifier"} <= set(checked)


def test_summary_states_the_convention():
    assert "larger = more likely" in SCORE_CONVENTION and "both tasks" in SCORE_CONVENTION
