"""Subsets methods: which training subset t1..tK each generated test image came from.

- ``centroid`` (AIMultimediaLab 2025, 99.04 % with their Siamese CNN): the nearest class centroid —
  the centroids stored in the model (mean embedding of each subset's real training images), or
  computed from ``--reference`` when the model has none. Per-group best with one centroid per
  group (G = N).
- ``classifier`` (Medhastra 2025): the argmax of a classifier's logits; score = softmax probability.
- ``knn``: a k-NN vote over the labelled real AND generated training images of ``--reference``
  (row top-k + per-group best in one pass); ties go to the class with the better best match.

``score`` follows fprt's one sign convention: larger = more likely the chosen subset (centroid: the
closeness, i.e. minus the L2 distance for L2 models; classifier: the probability; knn: the vote share).
"""

from __future__ import annotations

import numpy as np

from fprt.errors import FprtError
from fprt.runtime.methods.base import Context, ImageSet, Method, MethodResult, as_numpy, neighbour_names
from fprt.runtime.methods.reductions import search, to_metric


# One sign convention for the ``score`` column in both tasks (issue 14): larger = more likely the decision
# taken — here the chosen subset; membership: "used". Distances are negated (closeness).
LARGER_MEANS = "more likely the chosen subset"


def _metric_word(metric: str) -> str:
    return {"l2": "L2 distance", "cosine": "cosine", "ip": "inner product"}[metric]


class Centroid(Method):
    name = "centroid"
    task = "subsets"
    summary = "nearest class centroid of the embeddings (centroids from the model, else from --reference real images)"
    source = "AIMultimediaLab 2025"
    kinds = ("embedding", "classifier")

    def image_sets(self, data):
        sets = [data.test]
        if data.meta is not None and data.meta.centroids is None:
            sets.append(data.ref_real(required_for=self.name, why="the model stores no class centroids"))
        return sets

    def score(self, ctx: Context) -> MethodResult:
        if ctx.meta.centroids is not None:
            centroids = np.asarray(ctx.meta.centroids, dtype=np.float32)
            classes = list(ctx.meta.class_names)
            origin = "model"
        else:
            ref = ctx.sets["ref_real"]
            emb = as_numpy(ctx.emb("ref_real", self.output))
            classes = sorted(set(ref.labels), key=_natural)
            centroids = np.stack([emb[[lab == c for lab in ref.labels]].mean(0) for c in classes]).astype(np.float32)
            origin = "reference real images"
        q = ctx.emb("test", self.output)
        g = len(classes)
        found = search(q, centroids, metric=ctx.metric, groups=np.arange(g), n_groups=g)
        close = found.group_best  # M×K closeness to each centroid
        best = np.argmax(close, axis=1)  # first maximum: ties go to the lower class
        score = close[np.arange(len(q)), best]
        order = np.argsort(-close, axis=1, kind="stable")[:, : min(ctx.options.k, g)]
        return MethodResult(
            decisions=[classes[i] for i in best],
            score=np.asarray(score, dtype=np.float64),  # closeness: larger = closer = more likely (L2: minus the distance)
            score_name=f"closeness to the chosen centroid ({_metric_word(ctx.metric)}{', negated' if ctx.metric == 'l2' else ''})",
            larger_means=LARGER_MEANS,
            columns={f"{_metric_word(ctx.metric).replace(' ', '_')}_{c}": to_metric(close[:, i], ctx.metric) for i, c in enumerate(classes)},
            neighbours=[[classes[j] for j in row] for row in order],
            neighbour_scores=to_metric(np.take_along_axis(close, order, 1), ctx.metric),
            neighbour_score_name=f"{_metric_word(ctx.metric)} to the nearest centroids",
            class_scores=close,
            params={"centroids_from": origin, "classes": classes},
        )


class Classifier(Method):
    name = "classifier"
    task = "subsets"
    summary = "argmax of the classifier's logits; score = softmax probability of the chosen subset"
    source = "Medhastra 2025"
    kinds = ("classifier",)
    output = "logits"

    def image_sets(self, data):
        return [data.test]

    def score(self, ctx: Context) -> MethodResult:
        logits = as_numpy(ctx.emb("test", "logits")).astype(np.float64)
        classes = list(ctx.meta.class_names)
        if logits.shape[1] != len(classes):
            raise FprtError(f"the model has {logits.shape[1]} logits for {len(classes)} class names {classes}")
        z = logits - logits.max(1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(1, keepdims=True)
        best = np.argmax(logits, axis=1)
        order = np.argsort(-prob, axis=1, kind="stable")[:, : min(ctx.options.k, len(classes))]
        return MethodResult(
            decisions=[classes[i] for i in best],
            score=prob[np.arange(len(best)), best],
            score_name="softmax probability of the chosen subset",
            larger_means=LARGER_MEANS,
            columns={f"prob_{c}": prob[:, i] for i, c in enumerate(classes)},
            neighbours=[[classes[j] for j in row] for row in order],
            neighbour_scores=np.take_along_axis(prob, order, 1),
            neighbour_score_name="probabilities of the likeliest subsets",
            class_scores=prob,
        )


class Knn(Method):
    name = "knn"
    task = "subsets"
    summary = "k-NN vote over the labelled real and generated training images of --reference"
    source = "fprt (per-group best of the similarity extension)"
    kinds = ("embedding", "classifier", "pair")
    needs_reference = True

    def image_sets(self, data):
        return [data.test, data.ref_all(required_for=self.name)]

    def score(self, ctx: Context) -> MethodResult:
        ref = ctx.sets["ref_all"]
        classes = sorted(set(ref.labels), key=_natural)
        lab = np.array([classes.index(c) for c in ref.labels], dtype=np.int64)
        q = ctx.emb("test", self.output)
        k = min(ctx.options.k, len(lab))
        found = search(q, ctx.emb("ref_all", self.output), metric=ctx.metric, k=k, groups=lab, n_groups=len(classes))
        votes = np.zeros((len(q), len(classes)))
        np.add.at(votes, (np.repeat(np.arange(len(q)), k), lab[found.row_indices].reshape(-1)), 1.0)
        # most votes; among equal votes the class with the better best match; then the lower class
        rank = np.argsort(np.argsort(-found.group_best, axis=1, kind="stable"), axis=1, kind="stable")  # 0 = best
        key = votes * (len(classes) + 1) - rank
        best = np.argmax(key, axis=1)
        return MethodResult(
            decisions=[classes[i] for i in best],
            score=votes[np.arange(len(q)), best] / k,
            score_name=f"share of the {k} nearest training images in the chosen subset",
            larger_means=LARGER_MEANS,
            columns={f"best_{_metric_word(ctx.metric).replace(' ', '_')}_{c}": to_metric(found.group_best[:, i], ctx.metric) for i, c in enumerate(classes)},
            neighbours=neighbour_names(found.row_indices, ctx.names("ref_all")),
            neighbour_scores=to_metric(found.row_values, ctx.metric),
            neighbour_score_name=f"{_metric_word(ctx.metric)} to the nearest training images",
            class_scores=found.group_best + votes,
            params={"k": k, "reference_images": len(lab), "classes": classes},
        )


def _natural(c: str):
    import re

    m = re.fullmatch(r"t(\d+)", c)
    return (int(m.group(1)), c) if m else (1 << 30, c)


METHODS = (Centroid, Classifier, Knn)
