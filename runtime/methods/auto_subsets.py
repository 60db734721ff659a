"""``--method auto`` for subsets: the evidence validated on the training split decides.

With a training split (``train/`` beside ``test/``, or ``--reference``), every candidate of
``fprt.runtime.evidence.subsets`` — centroid and k-NN in the embedding, logistic-regression probes on
the embedding and on 32×32 pixels, the generator-fingerprint probe, and a stacked probe over all of
them — is scored by stratified cross-validation on the labelled generated training images; the best
one is refitted on the whole training split and applied to the test images. No fit ever sees a test
label (the test split's labels are not even read here). The evidence table (``fprt score`` prints it;
summary.json ``"evidence"``) lists each candidate's CV accuracy and weight, and says whether the
decision rests on the generator's trace or on the subsets' content.

Without a model, the embedding is the image area-averaged to 32×32 (``PixelFeatures`` stands in for
the model) and the probes on pixels and fingerprints do the work.

Without a training split — or one without generated images — there is nothing to validate on; the
documented fallback is the model's own rule: a classifier's argmax, the nearest stored centroid, else the
nearest centroid of the real training images (centroid method) — and ``EvidenceTable.note`` says so.

Score: the chosen candidate's score for the chosen subset (a probability for the probes; for centroid
a closeness; for k-NN a vote share) — larger = more likely the chosen subset.
Neighbours: the nearest real training images *of the chosen subset* (file names), in the embedding.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fprt.errors import FprtError
from fprt.runtime.evidence import EvidenceRow, EvidenceTable
from fprt.runtime.methods.base import Context, Method, MethodResult, as_numpy
from fprt.runtime.methods.classical import _Features

SCORE_NAME = "score of the chosen subset by the chosen evidence (probability for probes, closeness for centroid, vote share for k-NN)"
LARGER_MEANS = "more likely the chosen subset"
PIXEL_EMBEDDING = 32
MIN_SIZE = 16  # fingerprints: two 8×8 period tiles at least


class PixelFeatures(_Features):
    """The stand-in model of ``auto`` without a model: the image area-averaged to 32×32 (cosine)."""

    name = "auto-pixels"
    metric = "cosine"
    output = "embedding"

    def __init__(self, size: int = 256) -> None:
        super().__init__(size, task="subsets")

    def infer(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        from fprt.runtime.evidence.fingerprint import small_pixels

        return {"embedding": small_pixels(pixels, PIXEL_EMBEDDING) + 1e-3}  # + ε: a black image is not a zero row


class Auto(Method):
    name = "auto"
    task = "subsets"
    summary = "the best of centroid / k-NN / linear probes / generator-fingerprint probe / stacked, chosen by CV on the training split"
    source = "fprt (evidence validated on the training split)"
    kinds = ("embedding", "classifier", "pair", "classical")
    model_optional = True  # without --model: PixelFeatures stands in for it

    def features(self, options):
        return PixelFeatures()

    def pixel_features(self, sets, model):
        """Fingerprints and 32×32 pixels from the pipeline's one decode, at the test images' own size; the
        real training images get no fingerprint (no generator trace: nothing reads it)."""
        from fprt.runtime.evidence.fingerprint import PixelFeatureSpec, first_native_size

        if "ref_generated" not in sets:
            return None  # nothing to validate on: the fallback needs no pixels
        size = first_native_size(sets["test"].paths)
        if size is None or size < MIN_SIZE:
            return None
        generated = {Path(p) for name in ("test", "ref_generated") for p in sets[name].paths}
        real = sets["ref_real"].paths if "ref_real" in sets else []
        return PixelFeatureSpec(size=size, untraced=frozenset(Path(p) for p in real) - generated)

    def image_sets(self, data):
        if data.reference is None:
            return [data.test]
        sets = [data.test, data.ref_real(required_for=self.name)]
        if any(data.reference.generated.values()):  # labelled generated images: something to validate on
            sets.append(data.ref_generated(required_for=self.name))
        return sets

    # ------------------------------------------------------------------ score
    def score(self, ctx: Context) -> MethodResult:
        if "ref_generated" not in ctx.sets:
            return self._fallback(ctx)
        from fprt.runtime.evidence.subsets import candidates, choose, evidence_table

        inp = self._inputs(ctx)
        cands, folds = candidates(inp, n_neighbours=ctx.options.k)
        chosen = choose(cands)
        table = evidence_table(cands, chosen, len(inp.y_gen), len(folds))
        if inp.emb_gen is not None and isinstance(ctx.backend, PixelFeatures):
            table.note += "; no model: the embedding is the image at 32x32 pixels"
        plan = inp.cv_plan
        if plan is not None and plan.sampled:
            table.note += (f"; cross-validated on a stratified sample of {len(plan.rows)} of the {plan.total} generated "
                           "training images (the final fits use all of them)")
        return self._result(ctx, inp, cands, chosen, table)

    def _inputs(self, ctx: Context):
        from fprt.runtime.evidence.subsets import SubsetsInputs
        from fprt.runtime.methods.subsets import _natural

        gen, real = ctx.sets["ref_generated"], ctx.sets["ref_real"]
        classes = sorted(set(gen.labels) | set(real.labels), key=_natural)
        index = {c: i for i, c in enumerate(classes)}
        t0 = time.perf_counter()
        px = _pixel_blocks(ctx)
        seconds = time.perf_counter() - t0
        inp = SubsetsInputs(classes=classes, y_gen=np.array([index[c] for c in gen.labels], np.int64),
                            y_real=np.array([index[c] for c in real.labels], np.int64),
                            px_gen=px["ref_generated"], px_real=px["ref_real"], px_test=px["test"], metric=ctx.metric,
                            seconds=seconds)
        outputs = ctx.outputs["test"]
        if "embedding" in outputs:
            inp.emb_test = _rows(ctx.emb("test"))
            inp.emb_gen = _rows(ctx.emb("ref_generated"))
            inp.emb_real = _rows(ctx.emb("ref_real"))
            inp.embedding_is_pixels = isinstance(ctx.backend, PixelFeatures)
            meta = ctx.meta
            if meta.centroids is not None and list(meta.class_names) == classes:
                inp.centroids = np.asarray(meta.centroids, dtype=np.float32)
        if "logits" in outputs and list(ctx.meta.class_names) == classes:
            inp.classifier_gen = _softmax(ctx.emb("ref_generated", "logits"))
            inp.classifier_test = _softmax(ctx.emb("test", "logits"))
        return inp

    def _result(self, ctx: Context, inp, cands, chosen, table) -> MethodResult:
        classes = inp.classes
        s = chosen.test
        best = np.argmax(s, axis=1)
        rows = np.arange(len(best))
        columns = {f"{chosen.name}_{c}": s[:, i] for i, c in enumerate(classes)}
        fp = next((c for c in cands if c.name == "fingerprint"), None)
        if fp is not None and fp is not chosen:
            columns["fingerprint_prob"] = fp.test[rows, best]
        neighbours, nscores = self._neighbours(ctx, inp, best)
        return MethodResult(
            decisions=[classes[i] for i in best],
            score=s[rows, best].astype(np.float64),
            score_name=f"{chosen.name}: {SCORE_NAME}",
            larger_means=LARGER_MEANS,
            columns=columns,
            neighbours=neighbours,
            neighbour_scores=nscores,
            neighbour_score_name=f"{_word(ctx.metric)} to the nearest real training images of the chosen subset",
            class_scores=s,
            params={"classes": classes, "chosen": chosen.name,
                    "cv_accuracy": {c.name: c.cv_accuracy for c in cands},
                    "seconds": {"pixel_features": round(inp.seconds, 3), **{c.name: round(c.seconds, 3) for c in cands}}},
            evidence=table,
        )

    def _neighbours(self, ctx: Context, inp, best: np.ndarray):
        """For each test image its ``k`` nearest real training images of its chosen subset (embedding)."""
        from fprt.runtime.methods.reductions import search, to_metric

        names = ctx.names("ref_real")
        emb_test = inp.emb_test if inp.emb_test is not None else inp.px_test["pixels_small"]
        emb_real = inp.emb_real if inp.emb_real is not None else inp.px_real["pixels_small"]
        metric = ctx.metric if inp.emb_test is not None else "cosine"
        k = max(1, min(ctx.options.k, max(int(np.bincount(inp.y_real, minlength=len(inp.classes)).max()), 1)))
        neighbours: list[list[str]] = [[] for _ in best]
        scores = np.full((len(best), k), np.nan)
        for c in np.unique(best):
            q = np.flatnonzero(best == c)
            ref = np.flatnonzero(inp.y_real == c)
            if len(ref) == 0:
                continue
            kk = min(k, len(ref))
            found = search(emb_test[q], emb_real[ref], metric=metric, k=kk)
            for row, i in enumerate(q):
                neighbours[i] = [names[ref[j]] for j in found.row_indices[row]]
            scores[q, :kk] = to_metric(found.row_values, metric)
        return neighbours, scores

    # ------------------------------------------------------------------ no training split
    def _fallback(self, ctx: Context) -> MethodResult:
        from fprt.runtime.methods import get_method

        meta = ctx.meta
        missing = "no generated training images" if "ref_real" in ctx.sets else "no training split"
        if getattr(meta, "kind", "") == "classifier" and "logits" in ctx.outputs["test"]:
            rule, why = "classifier", "the classifier's argmax"
        elif meta.centroids is not None:
            rule, why = "centroid", "the nearest of the model's stored centroids"
        elif "ref_real" in ctx.sets:
            rule, why = "centroid", "the nearest centroid of the real training images"
        else:
            raise FprtError(
                "--method auto for subsets needs the training split (train/ beside test/, or --reference DIR) to "
                "validate its evidence, or a model that stores class centroids or is a classifier"
            )
        res = get_method(rule, "subsets").score(ctx)
        table = EvidenceTable(task="subsets", fusion=f"unsupervised fallback: {why}", folds=0, training_images=0,
                              note=f"{missing}: nothing to validate on, so auto applies {why} "
                                   f"(the {rule} method) without cross-validation")
        table.add(EvidenceRow(feature=rule, cv_score=None, cv_metric="accuracy", weight=1.0,
                              catches="subset content in the model's embedding", rests_on="content", chosen=True))
        res.evidence = table
        res.params = {**res.params, "fallback": rule}
        return res


def _pixel_blocks(ctx: Context) -> dict[str, dict[str, np.ndarray]]:
    """Per set its pixel feature blocks: the pipeline's (computed in its one decode, or cached), else read
    here (a runner that does not compute them, e.g. Ray) — the same per-image functions either way."""
    from fprt.runtime.evidence.fingerprint import FEATURE_NAMES, blocks_of_files, native_size

    spec = ctx.pixel_features
    sets = ("test", "ref_generated", "ref_real")
    if spec is not None and all(spec.output(n) in ctx.outputs[s] for s in sets for n in FEATURE_NAMES):
        px = {s: {n: as_numpy(ctx.outputs[s][spec.output(n)]) for n in FEATURE_NAMES} for s in sets}
        for s in ("test", "ref_generated"):
            px[s]["fingerprint"] = _traced(px[s]["fingerprint"], ctx.sets[s].paths, spec.size)
        return px
    size = native_size(ctx.sets["test"].paths[0])  # every set at the first test image's own size
    if size < MIN_SIZE:
        raise FprtError(f"--method auto for subsets reads generator fingerprints from images of at least {MIN_SIZE} px; "
                        f"{ctx.sets['test'].paths[0]} is {size} px (choose another --method)")
    px = {name: blocks_of_files(ctx.sets[name].paths, size=size) for name in ("test", "ref_generated")}
    px["ref_real"] = blocks_of_files(ctx.sets["ref_real"].paths, size=size, names=("pixels_small",))  # no generator trace
    return px


def _traced(fingerprints: np.ndarray, paths, size: int) -> np.ndarray:
    """A generated set's fingerprints, with those the cache held as an untraced real image's (the same bytes as
    a real training image: ``PixelFeatureSpec.untraced``) computed from the file."""
    from fprt.runtime.evidence.fingerprint import blocks_of_files, untraced_rows

    rows = untraced_rows(fingerprints)
    if not len(rows):
        return fingerprints
    fingerprints = fingerprints.copy()
    fingerprints[rows] = blocks_of_files([paths[i] for i in rows], size=size, names=("fingerprint",))["fingerprint"]
    return fingerprints


def _rows(x) -> np.ndarray:
    a = as_numpy(x)
    return a.reshape(len(a), -1).astype(np.float32)


def _softmax(logits) -> np.ndarray:
    z = as_numpy(logits).astype(np.float64)
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def _word(metric: str) -> str:
    return {"l2": "L2 distance", "cosine": "cosine", "ip": "inner product"}[metric]


AUTO = Auto
