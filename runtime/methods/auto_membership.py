"""``--method auto`` for membership: the evidence, fused on the training split, applied to the test split.

1. Evidence (``fprt.runtime.evidence.membership``) for every real image of the training split (used +
   not used, against the training split's generated images) and of the test split (real_unknown against
   the test split's generated images): raw-pixel NCC, geometric verification, SSIM on the candidates,
   and with ``--model`` the learned embedding's best similarity, each also as a margin over the best
   match among the other real images.
2. Fusion, fitted on the training split only: scikit-learn logistic regression on the standardised
   evidence (balanced classes). Each single feature and the fused model are scored by stratified k-fold
   cross-validated ROC AUC on the training split; the best of them (the fused model on a tie) is chosen,
   refitted on the whole training split and applied to the test split. used when P(used) > 0.5
   (or ``--threshold``). The test split's labels are never read.
3. Without a training split (no train/ folder, no ``--reference``), the documented unsupervised rule:
   the mean of the test images' z-scores of the margins (pixel, geometric, and embedding when a model
   is given), used when above mean + α·std of that mean over the test images (α = ``--alpha``, 0.5),
   the ``max-sigma`` rule on the combined margin. The evidence table says so in its note.

Runs with or without a model: without one the images are decoded at 128 px and only the classical
evidence is used (``model_optional``: the pipeline calls ``features`` only when no model is given). With one,
the pixels the evidence compares come from the pipeline's one decode (``pixel_features``: the model's size, at
most 128 px) and its cache, never from a second read of the files.
"""

from __future__ import annotations

import time

import numpy as np

from fprt.runtime.evidence import EvidenceRow, EvidenceTable
from fprt.runtime.evidence.geometry import VERIFY_SIZE
from fprt.runtime.evidence.membership import CATCHES, MembershipEvidence, membership_evidence
from fprt.runtime.evidence.parallel import one_blas_thread
from fprt.runtime.methods.base import Context, Method, MethodResult, as_numpy, neighbour_names
from fprt.runtime.methods.classical import _Features

FOLDS = 5
VERIFY_K = 3  # candidates per real image from each ranking (embedding, pixels)
UNSUPERVISED = ("embedding_margin", "pixel_margin", "geometric_margin")


class PixelFeatures(_Features):
    """Stand-in backend without a model: the images themselves at 128 px (not cached)."""

    name = "pixels"
    metric = "cosine"
    output = "pixels"
    cacheable = False

    def infer(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        return {"pixels": np.asarray(pixels, dtype=np.uint8)}


def _model(c: float = 1.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=1000))


def cv_auc(x: np.ndarray, y: np.ndarray, folds: int) -> float:
    """Stratified k-fold cross-validated ROC AUC of the logistic regression on ``x`` (training split only)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    p = cross_val_predict(_model(), x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def fit_fusion(train: MembershipEvidence, y: np.ndarray, folds: int):
    """(table rows, chosen feature list, fitted model): every single feature and the fused model by CV AUC;
    the fits on one BLAS thread (``parallel.one_blas_thread``)."""
    with one_blas_thread():
        return _fit_fusion(train, y, folds)


def _fit_fusion(train: MembershipEvidence, y: np.ndarray, folds: int):
    names = train.names
    x = train.matrix(names)
    fused = _model().fit(x, y)
    coef = fused[-1].coef_[0]
    rows = [EvidenceRow("fused", cv_auc(x, y, folds), "roc_auc", None, "all of the above", "fused")]
    for j, n in enumerate(names):
        rows.append(EvidenceRow(n, cv_auc(x[:, [j]], y, folds), "roc_auc", float(coef[j]), CATCHES.get(n, ""), "content"))
    best = max(rows, key=lambda r: r.cv_score)  # first (fused) on a tie
    best.chosen = True
    chosen = names if best.feature == "fused" else [best.feature]
    model = fused if best.feature == "fused" else _model().fit(train.matrix(chosen), y)
    return rows, chosen, model


def unsupervised_score(ev: MembershipEvidence) -> tuple[np.ndarray, list[str]]:
    """Mean z-score (over the given images) of the margin features: the rule without a training split."""
    used = [n for n in UNSUPERVISED if n in ev.features]
    z = []
    for n in used:
        v = ev.features[n]
        z.append((v - v.mean()) / (v.std() or 1.0))
    return np.mean(z, axis=0), used


def verify_pixels(meta):
    """The ``PixelFeatureSpec`` of the pixels the evidence compares when a model embeds the images: each image
    resized once from its decode to the model's size, or to ``VERIFY_SIZE`` if the model's is larger."""
    from fprt.runtime.evidence.fingerprint import PixelFeatureSpec

    pre = meta.preprocess
    return PixelFeatureSpec(names=("pixels",), size=min(pre.size, VERIFY_SIZE), resize=pre.resize)


def _pixels(ctx: Context, name: str) -> np.ndarray:
    """The set's pixels for the evidence: the pipeline's (its one decode, or the cache), else decoded here
    the same way (a runner that leaves pixel features to the method, e.g. Ray)."""
    spec = verify_pixels(ctx.meta)
    out = spec.output("pixels")
    if out in ctx.outputs[name]:
        return as_numpy(ctx.outputs[name][out])
    return ctx.load_pixels(ctx.sets[name].paths, size=spec.size)


class AutoMembership(Method):
    name = "auto"
    task = "membership"
    summary = ("evidence (raw-pixel NCC, patch-wise geometric verification, SSIM on candidates, embedding) "
               "fused by logistic regression chosen with cross-validation on the training split")
    source = "fprt (issue 12): VCMI 2023 typical-image baseline + Medhastra 2025 logistic regression"
    kinds = ("embedding", "classifier", "pair", "classical")
    model_optional = True
    output = "pixels"

    def features(self, options):
        return PixelFeatures(VERIFY_SIZE)

    def pixel_features(self, sets, model):
        """With a model: the images at the verification size (at most ``VERIFY_SIZE``, the model's resize filter)
        from the pipeline's one decode, cached beside the embeddings (16 KB per image at 128 px), so the
        evidence does not decode every image a second time. Without one the stand-in's output is the pixels."""
        return None if isinstance(model, PixelFeatures) else verify_pixels(model.meta)

    def image_sets(self, data):
        sets = [data.test, data.test_generated]
        if data.reference is not None:
            sets += [data.ref_real(required_for=self.name), data.ref_generated(required_for=self.name)]
        return sets

    def _evidence(self, ctx: Context, real: str, gen: str) -> MembershipEvidence:
        outs = ctx.outputs[real]
        if "pixels" in outs:  # no model: the stand-in decoded the pixels
            rp, gp, re, ge = as_numpy(outs["pixels"]), as_numpy(ctx.emb(gen, "pixels")), None, None
        else:
            rp, gp = _pixels(ctx, real), _pixels(ctx, gen)
            re, ge = ctx.emb(real, "embedding"), ctx.emb(gen, "embedding")
        return membership_evidence(rp, gp, real_emb=re, gen_emb=ge, metric=ctx.metric, k=VERIFY_K)

    def score(self, ctx: Context) -> MethodResult:
        t0 = time.perf_counter()
        test = self._evidence(ctx, "test", "test_generated")
        train, y = None, None
        if "ref_real" in ctx.sets:
            y = np.array([1 if lab == "used" else 0 for lab in ctx.sets["ref_real"].labels])
            train = self._evidence(ctx, "ref_real", "ref_generated")
        t_ev = time.perf_counter() - t0
        folds = 0 if y is None else min(FOLDS, int(np.bincount(y, minlength=2).min()))
        table = EvidenceTable(task="membership")
        if folds >= 2:
            rows, chosen, model = fit_fusion(train, y, folds)
            table.rows, table.folds, table.training_images = rows, folds, len(y)
            table.fusion = "logistic regression on the standardised evidence, chosen by CV ROC AUC"
            prob = model.predict_proba(test.matrix(chosen))[:, 1]
            t = 0.5 if ctx.options.threshold is None else float(ctx.options.threshold)
            score, used, score_name = prob, prob > t, "P(used) from the fused evidence"
            params = {"rule": "supervised", "chosen": table.chosen.feature, "features": chosen, "threshold": t}
        else:
            score, names = unsupervised_score(test)
            t = float(score.mean() + ctx.options.alpha * score.std())
            used, score_name = score > t, "mean z-score of the evidence margins over the test images"
            why = ("no training split (train/ or --reference)" if y is None
                   else "the training split needs at least 2 used and 2 not-used real images")
            table.fusion = "unsupervised: mean z-score of the margins > mean + alpha*std"
            table.note = f"{why}: nothing to fit; the unsupervised rule decided (features {', '.join(names)})"
            table.rows = [EvidenceRow(n, None, "roc_auc", 1.0 / len(names), CATCHES[n]) for n in names]
            table.rows.append(EvidenceRow("fused", None, "roc_auc", None, "mean z-score", "fused", chosen=True))
            params = {"rule": "unsupervised", "features": names, "alpha": ctx.options.alpha, "threshold": t}
        ctx.timings.update(evidence_s=t_ev, fusion_s=time.perf_counter() - t0 - t_ev)  # not in params: those stay deterministic
        k = min(ctx.options.k, test.candidates.shape[1])
        cand, cand_scores = test.candidates[:, :k], test.candidate_scores[:, :k]
        return MethodResult(
            decisions=["1" if u else "0" for u in used], score=np.asarray(score, np.float64), score_name=score_name,
            larger_means="more likely used", columns=dict(test.features),
            neighbours=neighbour_names(cand, ctx.names("test_generated")),
            neighbour_scores=np.where(cand >= 0, cand_scores, np.nan),
            neighbour_score_name="patch-wise NCC (±5 px per 32×32 patch, 128 px) with each verified candidate",
            params=params, evidence=table,
        )


AUTO = AutoMembership
