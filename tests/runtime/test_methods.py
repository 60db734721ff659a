"""Every scoring method against a brute-force NumPy oracle on the full (small) similarity matrix,
for each metric, with near-duplicates and exact ties in the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess
from fprt.runtime.methods import get_method
from fprt.runtime.methods.base import Context, ImageSet, MethodOptions
from fprt.runtime.methods.reductions import numpy_search, search

METRICS = ("cosine", "l2", "ip")


def closeness_matrix(q, r, metric):
    q, r = q.astype(np.float64), r.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        r = r / np.linalg.norm(r, axis=1, keepdims=True)
        return q @ r.T
    if metric == "ip":
        return q @ r.T
    return -np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1))


def _data(seed=0, m=13, n=29, d=8):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((m, d)).astype(np.float32)
    gen = rng.standard_normal((n, d)).astype(np.float32)
    gen[:5] = real[[0, 2, 4, 6, 8]] + 0.01 * rng.standard_normal((5, d)).astype(np.float32)  # memorised near-copies
    gen[7] = gen[6]  # an exact tie between two generated images
    return real, gen


def _meta(task="membership", metric="cosine", **kw):
    classes = ["not_used", "used"] if task == "membership" else ["t1", "t2", "t3"]
    return ModelMeta(model="t", kind=kw.pop("kind", "embedding"), task=task, preprocess=Preprocess(size=8),
                     class_names=classes, metric=metric, **kw)


def _ctx(sets, outputs, meta, **opts):
    return Context(task=meta.task, classes=list(meta.class_names), metric=meta.metric, meta=meta,
                   options=MethodOptions(**opts), sets=sets, outputs=outputs)


def _membership_ctx(metric, **opts):
    real, gen = _data()
    sets = {"test": ImageSet("test", [Path(f"r{i}.png") for i in range(len(real))]),
            "test_generated": ImageSet("test_generated", [Path(f"g{j}.png") for j in range(len(gen))])}
    return _ctx(sets, {"test": {"embedding": real}, "test_generated": {"embedding": gen}}, _meta(metric=metric), **opts), real, gen


def _rr(real, metric):
    rr = closeness_matrix(real, real, metric)
    np.fill_diagonal(rr, -np.inf)
    return rr


@pytest.mark.parametrize("metric", METRICS)
def test_search_equals_numpy_oracle(metric):
    real, gen = _data()
    s = closeness_matrix(real, gen, metric)
    groups = np.arange(len(gen)) % 3
    f = search(real, gen, metric=metric, k=4, col_k=2, groups=groups, n_groups=3, stats=True)
    order = np.argsort(-s, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(f.row_indices, order)
    np.testing.assert_allclose(f.row_values, np.take_along_axis(s, order, 1), rtol=1e-5, atol=1e-5)
    corder = np.argsort(-s.T, axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(f.col_indices, corder)
    np.testing.assert_allclose(f.group_best, np.stack([s[:, groups == g].max(1) for g in range(3)], 1), rtol=1e-5, atol=1e-5)
    assert f.count == s.size
    np.testing.assert_allclose([f.mean, f.std, f.min, f.max], [s.mean(), s.std(), s.min(), s.max()], rtol=1e-5, atol=1e-5)
    fe = search(real, real, metric=metric, k=1, stats=True, exclude_self=True)
    rr = _rr(real, metric)
    np.testing.assert_array_equal(fe.row_indices[:, 0], rr.argmax(1))
    off = rr[np.isfinite(rr)]
    # L2 statistics come from the expanded float32 GEMM, where an image's distance to itself is ~1e-3,
    # not 0: removing the diagonal leaves that error spread over the M² scores (negligible for real M)
    tol = 2e-4 if metric == "l2" else 1e-5
    np.testing.assert_allclose([fe.mean, fe.std], [off.mean(), off.std()], rtol=tol, atol=1e-6)
    assert fe.count == off.size


@pytest.mark.parametrize("metric", METRICS)
def test_membership_rules(metric):
    ctx, real, gen = _membership_ctx(metric, alpha=0.7, k=3)
    s = closeness_matrix(real, gen, metric)
    best = s.max(1)
    rr = _rr(real, metric)

    res = get_method("max-sigma").score(ctx)
    t = best.mean() + 0.7 * best.std()
    assert res.decisions == ["1" if b > t else "0" for b in best]
    np.testing.assert_allclose(res.score, best, rtol=1e-5, atol=1e-5)
    order = np.argsort(-s, axis=1, kind="stable")[:, :3]
    assert res.neighbours == [[f"g{j}.png" for j in row] for row in order]
    if metric != "ip":  # inner products favour long vectors, not copies
        assert res.decisions[0] == "1"  # the memorised images are found

    res = get_method("vcmi-max").score(ctx)
    assert res.decisions == ["1" if b > rr.max() else "0" for b in best]

    res = get_method("vcmi-std").score(ctx)
    off = rr[np.isfinite(rr)]
    assert res.decisions == ["1" if b > off.mean() + 3 * off.std() else "0" for b in best]

    res = get_method("vcmi-retrieval").score(ctx)
    nearest_real = np.argmax(s, axis=0)  # per generated image: first maximum = lower index on ties
    hits = np.bincount(nearest_real, minlength=len(real))
    np.testing.assert_array_equal(res.score, hits)
    assert res.decisions == ["1" if h else "0" for h in hits]


def test_max_threshold_uses_model_threshold_in_metric_units():
    ctx, real, gen = _membership_ctx("l2")
    d = -closeness_matrix(real, gen, "l2")
    ctx.meta = _meta(metric="l2", threshold=float(np.median(d.min(1))))
    res = get_method("max-threshold").score(ctx)
    assert res.decisions == ["1" if x < ctx.meta.threshold else "0" for x in d.min(1)]
    ctx.meta = _meta(metric="l2")
    from fprt.errors import ModelError

    with pytest.raises(ModelError, match="stores none"):
        get_method("max-threshold").score(ctx)


def test_logreg_equals_sklearn_on_oracle_features():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    real, gen = _data(seed=0)
    ref_real, ref_gen = _data(seed=1)
    labels = ["used" if i % 2 == 0 else "not_used" for i in range(len(ref_real))]
    sets = {"test": ImageSet("test", [Path(f"r{i}") for i in range(len(real))]),
            "test_generated": ImageSet("test_generated", [Path(f"g{i}") for i in range(len(gen))]),
            "ref_real": ImageSet("ref_real", [Path(f"rr{i}") for i in range(len(ref_real))], labels),
            "ref_generated": ImageSet("ref_generated", [Path(f"rg{i}") for i in range(len(ref_gen))])}
    outs = {"test": {"embedding": real}, "test_generated": {"embedding": gen},
            "ref_real": {"embedding": ref_real}, "ref_generated": {"embedding": ref_gen}}
    res = get_method("logreg").score(_ctx(sets, outs, _meta()))

    def feats(r, g):
        return np.column_stack([closeness_matrix(r, g, "cosine").max(1), _rr(r, "cosine").max(1)])

    model = make_pipeline(StandardScaler(), LogisticRegression(random_state=0)).fit(feats(ref_real, ref_gen), [lab == "used" for lab in labels])
    np.testing.assert_allclose(res.score, model.predict_proba(feats(real, gen))[:, 1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", METRICS)
def test_subsets_centroid_and_knn(metric):
    rng = np.random.default_rng(3)
    test = rng.standard_normal((17, 6)).astype(np.float32)
    cents = rng.standard_normal((3, 6)).astype(np.float32)
    meta = _meta("subsets", metric, centroids=cents.tolist())
    sets = {"test": ImageSet("test", [Path(f"u{i}") for i in range(17)])}
    res = get_method("centroid").score(_ctx(sets, {"test": {"embedding": test}}, meta))
    assert res.decisions == [["t1", "t2", "t3"][i] for i in closeness_matrix(test, cents, metric).argmax(1)]

    ref = rng.standard_normal((40, 6)).astype(np.float32)
    ref_labels = [f"t{1 + i % 3}" for i in range(40)]
    sets["ref_all"] = ImageSet("ref_all", [Path(f"ref{i}") for i in range(40)], ref_labels)
    ctx = _ctx(sets, {"test": {"embedding": test}, "ref_all": {"embedding": ref}}, _meta("subsets", metric), k=5)
    res = get_method("knn").score(ctx)
    s = closeness_matrix(test, ref, metric)
    expected = []
    for row in s:
        nn = np.argsort(-row, kind="stable")[:5]
        votes = np.bincount([int(ref_labels[j][1:]) - 1 for j in nn], minlength=3)
        gbest = np.array([row[[lab == f"t{g + 1}" for lab in ref_labels]].max() for g in range(3)])
        cands = np.flatnonzero(votes == votes.max())
        expected.append(f"t{cands[np.argmax(gbest[cands])] + 1}")
    assert res.decisions == expected


def test_centroids_from_reference_and_classifier():
    rng = np.random.default_rng(5)
    test = rng.standard_normal((9, 4)).astype(np.float32)
    ref = rng.standard_normal((12, 4)).astype(np.float32)
    labels = [f"t{1 + i % 3}" for i in range(12)]
    sets = {"test": ImageSet("test", [Path(f"u{i}") for i in range(9)]),
            "ref_real": ImageSet("ref_real", [Path(f"r{i}") for i in range(12)], labels)}
    res = get_method("centroid").score(_ctx(sets, {"test": {"embedding": test}, "ref_real": {"embedding": ref}}, _meta("subsets", "l2")))
    cents = np.stack([ref[[lab == c for lab in labels]].mean(0) for c in ("t1", "t2", "t3")])
    assert res.decisions == [f"t{i + 1}" for i in closeness_matrix(test, cents, "l2").argmax(1)]
    assert res.params["centroids_from"] == "reference real images"

    logits = rng.standard_normal((9, 3)).astype(np.float32)
    res = get_method("classifier").score(_ctx({"test": sets["test"]}, {"test": {"logits": logits}}, _meta("subsets", kind="classifier")))
    assert res.decisions == [f"t{i + 1}" for i in logits.argmax(1)]
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(res.score, (p / p.sum(1, keepdims=True)).max(1), rtol=1e-6)


def test_method_names_and_errors():
    from fprt.errors import FprtError

    assert get_method("SSIM").name == "ssim-max"
    with pytest.raises(FprtError, match="Did you mean 'centroid'"):
        get_method("centriod")
    with pytest.raises(FprtError, match="is a membership method but the data is a subsets"):
        get_method("vcmi-max", "subsets")


def test_numpy_reference_is_blocked_consistently():
    real, gen = _data()
    a = numpy_search(real, gen, metric="l2", k=3, col_k=2, stats=True, block=4)
    b = numpy_search(real, gen, metric="l2", k=3, col_k=2, stats=True, block=1000)
    np.testing.assert_array_equal(a.row_indices, b.row_indices)
    np.testing.assert_array_equal(a.col_indices, b.col_indices)


def test_row_union_keeps_first_occurrences_or_sorts():
    """``reductions.row_union`` against a plain Python union per row (−1 = none, padded with −1)."""
    from fprt.runtime.methods.reductions import row_union

    rng = np.random.default_rng(4)
    for _ in range(200):
        m = int(rng.integers(1, 6))
        lists = [rng.integers(-1, 9, (m, int(rng.integers(1, 5)))) for _ in range(int(rng.integers(1, 4)))]
        rows = [list(dict.fromkeys(int(j) for j in np.concatenate([a[i] for a in lists]) if j >= 0)) for i in range(m)]
        width = max(1, max(len(r) for r in rows))
        for ascending in (False, True):
            want = np.full((m, width), -1)
            for i, r in enumerate(rows):
                want[i, : len(r)] = sorted(r) if ascending else r
            np.testing.assert_array_equal(row_union(*lists, ascending=ascending), want)
