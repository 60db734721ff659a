"""Membership methods: which real test images were used to train the generator (1) or not (0).

All of them start from the same one-pass reduction of the real test images against the generated
test images (row top-k: each real image's nearest generated images), in closeness (larger = more
alike; L2 as negative distance). ``s(r)`` below is a real image's best closeness to the generated set.

- ``max-sigma`` (Medhastra 2025): used when s(r) > μ + α·σ of s over the real test images (α = 0.5).
- ``max-threshold``: used when s(r) beats the model's validation threshold from training
  (``ModelMeta.threshold``, in the metric's units), or ``--threshold``.
- ``logreg`` (Medhastra 2025): logistic regression over two best scores, fitted on the training
  split of ``--reference`` and applied to the test split. Medhastra compared a generated image's best
  score to *used* with its best score to *not-used* real images; a submission needs a decision per
  real image, so fprt fits the regression per real image on the two best scores that tell "used"
  from "just typical": best closeness to the generated set and best closeness to the other real
  images (the not-used baseline of the VCMI rules).
- ``pair`` (VIT Visioneers 2025): the pair scorer's probability on each real image's k nearest
  generated images (found with its embed graph); score = the highest; used when above the model's
  threshold (default 0.5).
- ``vcmi-max``, ``vcmi-retrieval`` (VCMI 2023's threshold and retrieval approaches as the 2023
  overview describes them, on any similarity): used when s(r) beats the best real×real closeness
  (the overview says only "a threshold calculated based on the similarity between real images";
  the maximum is fprt's reading); when r is the nearest real image of at least one generated image
  (column top-1). ``vcmi-std`` is fprt's variant: s(r) above mean + 3·std of all real×real
  closenesses (the overview names no such rule).
- ``ssim-max`` (VCMI 2023's winning run, F1 0.802): ``vcmi-max`` on SSIM of the pixels. By default
  SSIM is computed on each real image's candidates only (the union of its 32 nearest images by
  raw-pixel NCC at 32×32, through the similarity extension, and its 32 best by SSIM without the
  covariance term on 32×32 pooled local means and variances: ``classical.ssim_topk_prefiltered``);
  ``--ssim-exact`` computes every pair (benchmarks/bench_evidence_membership.py measures the
  candidates' recall of the exact maximum).
- ``phash`` (DMK 2023): pHash Hamming distance; used when the nearest generated hash is closer than
  any two real images' hashes are (or within ``--threshold`` bits).
"""

from __future__ import annotations

import numpy as np

from fprt.errors import FprtError, ModelError
from fprt.runtime.methods.base import Context, ImageSet, Method, MethodResult, neighbour_names
from fprt.runtime.methods.reductions import search, to_closeness, to_metric

_WORD = {"l2": "L2 distance", "cosine": "cosine", "ip": "inner product"}


def _decide(used: np.ndarray) -> list[str]:
    return ["1" if u else "0" for u in used]


class _MaxBase(Method):
    task = "membership"
    kinds = ("embedding", "classifier", "pair")
    retrieval = False
    real_real: str | None = None  # None | "max" | "stats"

    def image_sets(self, data):
        return [data.test, data.test_generated]

    def nearest(self, ctx: Context):
        q, r = ctx.emb("test", self.output), ctx.emb("test_generated", self.output)
        k = min(ctx.options.k, len(r))
        return search(q, r, metric=ctx.metric, k=k, col_k=1 if self.retrieval else 0)

    def real_real_found(self, ctx: Context):
        q = ctx.emb("test", self.output)
        if len(q) < 2:
            raise FprtError(f"--method {self.name} compares real test images with each other: it needs at least 2")
        return search(q, q, metric=ctx.metric, k=1, stats=self.real_real == "stats", exclude_self=True)

    def result(self, ctx: Context, found, used, score, score_name, larger_means, params, columns=None) -> MethodResult:
        s = found.row_values[:, 0]
        cols = {f"best_{_WORD[ctx.metric].replace(' ', '_')}_to_generated": to_metric(s, ctx.metric)}
        cols.update(columns or {})
        return MethodResult(
            decisions=_decide(used),
            score=np.asarray(score, dtype=np.float64),
            score_name=score_name,
            larger_means=larger_means,
            columns=cols,
            neighbours=neighbour_names(found.row_indices, ctx.names("test_generated")),
            neighbour_scores=to_metric(found.row_values, ctx.metric),
            neighbour_score_name=f"{_WORD[ctx.metric]} to the nearest generated images",
            params=params,
        )

    def fixed_threshold(self, ctx: Context) -> float | None:
        t = ctx.options.threshold
        return None if t is None else float(to_closeness(t, ctx.metric))


class MaxSigma(_MaxBase):
    name = "max-sigma"
    summary = "best similarity to the generated set above mu + alpha*sigma of those best similarities"
    source = "Medhastra 2025"

    def score(self, ctx: Context) -> MethodResult:
        found = self.nearest(ctx)
        s = found.row_values[:, 0].astype(np.float64)
        mu, sigma = float(s.mean()), float(s.std())
        t = self.fixed_threshold(ctx)
        if t is None:
            t = mu + ctx.options.alpha * sigma
        return self.result(
            ctx, found, s > t, s, f"best closeness to the generated set ({_WORD[ctx.metric]}{', negated' if ctx.metric == 'l2' else ''})",
            "more likely used", {"alpha": ctx.options.alpha, "mu": mu, "sigma": sigma, "threshold_closeness": t},
        )


class MaxThreshold(_MaxBase):
    name = "max-threshold"
    summary = "best similarity to the generated set beats the model's validation threshold (or --threshold)"
    source = "fprt trainer's validation threshold"

    def score(self, ctx: Context) -> MethodResult:
        t = self.fixed_threshold(ctx)
        origin = "--threshold"
        if t is None:
            if ctx.meta.threshold is None:
                raise ModelError(
                    "--method max-threshold needs a decision threshold: this model stores none "
                    "(train a membership model, or pass --threshold in the metric's units, or use --method max-sigma)"
                )
            t = float(to_closeness(ctx.meta.threshold, ctx.metric))
            origin = "model"
        found = self.nearest(ctx)
        s = found.row_values[:, 0].astype(np.float64)
        return self.result(ctx, found, s > t, s, "best closeness to the generated set", "more likely used",
                           {"threshold_closeness": t, "threshold_from": origin})


class VcmiMax(_MaxBase):
    name = "vcmi-max"
    summary = "best similarity to the generated set beats the best similarity between two real images"
    source = "VCMI 2023 (threshold MAX)"
    real_real = "max"

    def score(self, ctx: Context) -> MethodResult:
        found = self.nearest(ctx)
        rr = self.real_real_found(ctx)
        s = found.row_values[:, 0].astype(np.float64)
        t = self.fixed_threshold(ctx)
        t = float(rr.row_values[:, 0].max()) if t is None else t
        return self.result(ctx, found, s > t, s - t, "best closeness to generated minus the max real×real closeness",
                           "more likely used", {"threshold_closeness": t},
                           {"best_to_other_real": to_metric(rr.row_values[:, 0], ctx.metric)})


class VcmiStd(_MaxBase):
    name = "vcmi-std"
    summary = "best similarity to the generated set above mean + 3*std of all real x real similarities"
    source = "fprt variant of VCMI 2023's threshold approach (mean + 3 std: not in the 2023 overview)"
    real_real = "stats"

    def score(self, ctx: Context) -> MethodResult:
        found = self.nearest(ctx)
        rr = self.real_real_found(ctx)
        s = found.row_values[:, 0].astype(np.float64)
        t = self.fixed_threshold(ctx)
        t = rr.mean + 3.0 * rr.std if t is None else t
        return self.result(ctx, found, s > t, s, "best closeness to the generated set", "more likely used",
                           {"threshold_closeness": t, "real_real_mean": rr.mean, "real_real_std": rr.std, "real_real_pairs": rr.count})


class VcmiRetrieval(_MaxBase):
    name = "vcmi-retrieval"
    summary = "used when the image is the nearest real image of at least one generated image"
    source = "VCMI 2023 (retrieval)"
    retrieval = True

    def score(self, ctx: Context) -> MethodResult:
        found = self.nearest(ctx)
        hits = np.bincount(found.col_indices[:, 0], minlength=len(found.row_values)).astype(np.float64)
        return self.result(ctx, found, hits > 0, hits, "generated images whose nearest real image this is",
                           "more likely used", {}, {"retrieved_by": hits.astype(np.int64)})


class LogReg(_MaxBase):
    name = "logreg"
    summary = "logistic regression on (best similarity to generated, best similarity to other real), fitted on --reference"
    source = "Medhastra 2025"
    needs_reference = True

    def image_sets(self, data):
        return [data.test, data.test_generated, data.ref_real(required_for=self.name), data.ref_generated(required_for=self.name)]

    def _features(self, ctx, real: str, gen: str):
        q = ctx.emb(real, self.output)
        a = search(q, ctx.emb(gen, self.output), metric=ctx.metric, k=min(ctx.options.k, len(ctx.emb(gen, self.output))))
        b = search(q, q, metric=ctx.metric, k=1, exclude_self=True)
        return a, np.column_stack([a.row_values[:, 0], b.row_values[:, 0]]).astype(np.float64)

    def score(self, ctx: Context) -> MethodResult:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        labels = ctx.sets["ref_real"].labels
        y = np.array([1 if lab == "used" else 0 for lab in labels])
        if len(np.unique(y)) != 2:
            raise FprtError("--method logreg needs used AND not_used real images in --reference")
        _, x_train = self._features(ctx, "ref_real", "ref_generated")
        found, x_test = self._features(ctx, "test", "test_generated")
        model = make_pipeline(StandardScaler(), LogisticRegression(random_state=0))
        model.fit(x_train, y)
        prob = model.predict_proba(x_test)[:, 1]
        t = 0.5 if ctx.options.threshold is None else float(ctx.options.threshold)
        lr = model[-1]
        return self.result(ctx, found, prob > t, prob, "P(used) from the logistic regression", "more likely used",
                           {"threshold": t, "coef": lr.coef_.tolist(), "intercept": lr.intercept_.tolist(),
                            "train_images": int(len(y)), "train_accuracy": float(model.score(x_train, y))},
                           {"best_to_other_real": to_metric(x_test[:, 1], ctx.metric)})


class Pair(_MaxBase):
    name = "pair"
    summary = "pair scorer probability on each real image's k nearest generated images (max over k)"
    source = "VIT Visioneers 2025"
    kinds = ("pair",)

    def score(self, ctx: Context) -> MethodResult:
        found = self.nearest(ctx)
        real_paths = ctx.sets["test"].paths
        gen_paths = ctx.sets["test_generated"].paths
        idx = found.row_indices
        k = idx.shape[1]
        prob = np.zeros(idx.shape, dtype=np.float64)
        chunk = max(1, 256 // k)
        for i0 in range(0, len(real_paths), chunk):
            i1 = min(i0 + chunk, len(real_paths))
            rows = idx[i0:i1]
            need = sorted(set(rows.reshape(-1).tolist()))
            where = {j: n for n, j in enumerate(need)}
            real_px = ctx.load_pixels(real_paths[i0:i1])
            gen_px = ctx.load_pixels([gen_paths[j] for j in need])
            a = np.repeat(real_px, k, axis=0)
            b = gen_px[[where[j] for j in rows.reshape(-1)]]
            p = ctx.backend.pair_probability(a, b)
            p = p.detach().cpu().numpy() if hasattr(p, "detach") else np.asarray(p)
            prob[i0:i1] = p.reshape(i1 - i0, k)
        best = prob.max(1)
        t = ctx.options.threshold if ctx.options.threshold is not None else (ctx.meta.threshold if ctx.meta.threshold is not None else 0.5)
        res = self.result(ctx, found, best > t, best, "highest pair probability over the nearest generated images",
                          "more likely used", {"threshold": float(t), "k": k})
        res.neighbour_scores = prob
        res.neighbour_score_name = "pair probability with each nearest generated image"
        return res


class SsimMax(_MaxBase):
    name = "ssim-max"
    summary = "SSIM of the pixels, VCMI's threshold MAX rule (the 2023 winner); slow: M×N SSIM maps"
    source = "VCMI 2023 (submission 2, F1 0.802)"
    kinds = ("classical",)
    output = "pixels"

    def features(self, options):
        from fprt.runtime.methods.classical import SsimFeatures

        return SsimFeatures(options.ssim_size)

    def score(self, ctx: Context) -> MethodResult:
        from fprt.runtime.methods.classical import SsimIndex

        from fprt.runtime.methods.classical import ssim_topk_prefiltered

        real, gen = ctx.emb("test", "pixels"), ctx.emb("test_generated", "pixels")
        k = min(ctx.options.k, len(gen))
        if ctx.options.ssim_exact:
            vals, idx = SsimIndex(gen).topk(real, k)
            rr, _ = SsimIndex(real).topk(real, 1, exclude_self=True)
        else:
            vals, idx = ssim_topk_prefiltered(real, gen, k)
            rr, _ = ssim_topk_prefiltered(real, real, 1, exclude_self=True)
        s = vals[:, 0]
        t = float(rr[:, 0].max()) if ctx.options.threshold is None else float(ctx.options.threshold)
        return MethodResult(
            decisions=_decide(s > t), score=s, score_name="max SSIM to the generated set", larger_means="more likely used",
            columns={"max_ssim_to_generated": s, "max_ssim_to_other_real": rr[:, 0]},
            neighbours=neighbour_names(idx, ctx.names("test_generated")), neighbour_scores=vals,
            neighbour_score_name="SSIM to the nearest generated images", params={"threshold_ssim": t, "ssim_size": ctx.options.ssim_size,
                    "pairs": "all" if ctx.options.ssim_exact else "raw-pixel NCC and uncorrelated-SSIM candidates"},
        )


class Phash(_MaxBase):
    name = "phash"
    summary = "pHash Hamming distance to the generated set, below the smallest real x real distance (or --threshold bits)"
    source = "DMK-SSN 2023"
    kinds = ("classical",)
    output = "phash"

    def features(self, options):
        from fprt.runtime.methods.classical import PhashFeatures

        return PhashFeatures(256)

    def score(self, ctx: Context) -> MethodResult:
        from fprt.runtime.methods.classical import hamming_from_ip

        real, gen = ctx.emb("test", "phash"), ctx.emb("test_generated", "phash")
        k = min(ctx.options.k, len(gen))
        found = search(real, gen, metric="ip", k=k)
        rr = search(real, real, metric="ip", k=1, exclude_self=True)
        h = hamming_from_ip(found.row_values[:, 0])
        h_rr = hamming_from_ip(rr.row_values[:, 0])
        if ctx.options.threshold is None:
            t = float(h_rr.min())
            used = h < t
        else:
            t = float(ctx.options.threshold)
            used = h <= t
        return MethodResult(
            decisions=_decide(used), score=64.0 - h, score_name="64 minus the Hamming distance to the nearest generated pHash",
            larger_means="more likely used", columns={"min_hamming_to_generated": h.astype(np.int64), "min_hamming_to_other_real": h_rr.astype(np.int64)},
            neighbours=neighbour_names(found.row_indices, ctx.names("test_generated")),
            neighbour_scores=hamming_from_ip(found.row_values).astype(np.int64), neighbour_score_name="Hamming distance to the nearest generated hashes",
            params={"threshold_bits": t, "rule": "fixed" if ctx.options.threshold is not None else "below min real x real"},
        )


METHODS = (MaxSigma, MaxThreshold, LogReg, Pair, VcmiMax, VcmiStd, VcmiRetrieval, SsimMax, Phash)
