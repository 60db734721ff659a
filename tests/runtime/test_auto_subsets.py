"""``--method auto`` for subsets and its evidence, on data the tests make (subsets_testkit): each
subset has its own content AND its own generator trace. Oracles: scipy (median filter), NumPy,
scikit-learn logistic regression on raw pixels (the simple baselines)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import subsets_testkit as kit
from runtime_testkit import assert_same_outputs, make_onnx, rescore_other_ways

from fprt.runtime import score
from fprt.runtime.evidence import fingerprint as F
from fprt.runtime.evidence import subsets as S

K = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return kit.make(tmp_path_factory.mktemp("subsets_traces") / "d", k=K, content=0.35, trace=2.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path, _, _ = make_onnx(tmp_path_factory.mktemp("m") / "pool.onnx", size=64, pool=4, dim=16, classes=("t1", "t2", "t3"))
    return path


def _pixel_baselines(root: Path) -> dict[str, float]:
    """Logistic regression on the raw 64×64 pixels (scikit-learn defaults + scaling), fitted on the
    generated training images / on the real training images, accuracy on the test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g, yg, r, yr, t, yt, _ = kit.load_split(root)
    flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    out = {}
    for name, x, y in (("pixels_logreg_generated", g, yg), ("pixels_logreg_real", r, yr)):
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(flat(x), y)
        out[name] = float((m.predict(flat(t)) == yt).mean())
    return out


def test_residual_and_tiles_match_scipy_and_numpy():
    from scipy.ndimage import median_filter

    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, size=(3, 40, 48), dtype=np.uint8)
    oracle = np.stack([p.astype(np.float32) - median_filter(p, size=3, mode="reflect") for p in px])
    np.testing.assert_array_equal(np.stack([F.noise_residual(p) for p in px]), oracle)
    tiles = np.stack([F.tile_means(F.noise_residual(p)) for p in px])
    np.testing.assert_allclose(tiles, oracle[:, :40, :48].reshape(3, 5, 8, 6, 8).mean((1, 3)).reshape(3, 64), atol=1e-5)
    # a pure checkerboard puts its power in the Nyquist cell of the spectrum grid, nowhere else
    y, x = np.mgrid[0:64, 0:64]
    board = (128 + 20 * (-1.0) ** (x + y)).astype(np.uint8)
    spec = F.spectrum_features(F.noise_residual(board))[: F.SPECTRUM_BINS * F.SPECTRUM_BINS // 2]
    grid = spec.reshape(F.SPECTRUM_BINS, F.SPECTRUM_BINS // 2)
    assert np.unravel_index(np.argmax(grid), grid.shape) == (0, F.SPECTRUM_BINS // 2 - 1)


@pytest.mark.parametrize("shape", [(64, 64), (256, 256), (40, 48), (37, 50)])
def test_spectrum_and_small_pixels_match_pytorch(shape):
    """The per-image NumPy/OpenCV features against PyTorch: rfft2 power (orthonormal, fftshift) pooled by
    adaptive mean / max pooling onto the bins × bins/2 grid; the image area-averaged to 32×32."""
    import torch

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    r = F.noise_residual(image)
    f = torch.fft.rfft2(torch.from_numpy(r).double(), norm="ortho")
    power = torch.fft.fftshift(f.real.square() + f.imag.square(), dim=0)[None, None]
    grid = (F.SPECTRUM_BINS, F.SPECTRUM_BINS // 2)
    mean = torch.nn.functional.adaptive_avg_pool2d(power, grid).flatten()
    peak = torch.nn.functional.adaptive_max_pool2d(power, grid).flatten()
    oracle = torch.log(torch.cat([mean, peak]) + 1e-6).numpy()
    np.testing.assert_allclose(F.spectrum_features(r), oracle, rtol=1e-4, atol=1e-4)
    small = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(image).double()[None, None] / 255, 32).flatten()
    np.testing.assert_allclose(F.small_of(image), small.numpy(), atol=1e-6)
    level = np.log(np.mean(r.astype(np.float64) ** 2) + 1e-6)
    assert F.fingerprint_of(image).shape == (F.n_fingerprint(),)
    assert F.fingerprint_of(image)[-1] == pytest.approx(level, rel=1e-6)


@pytest.mark.parametrize("shape", [(256, 256), (64, 64), (96, 128), (100, 100), (37, 50)])
def test_features_are_the_plain_definition_on_any_thread(shape):
    """The features computed in this thread's reused buffers, rows pooled before the shift where whole windows
    move (256 and 64 rows), are bit for bit the plain definition (pooling of ``power_spectrum``, which shifts
    first; ``small_of`` against the exact window means) — also when four threads compute them at once."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(16)]

    def plain(image):
        power = F.power_spectrum(F.noise_residual(image))
        bins = F.SPECTRUM_BINS
        mean = F._pool(F._pool(power, bins, 0, "mean"), bins // 2, 1, "mean")
        peak = F._pool(F._pool(power, bins, 0, "max"), bins // 2, 1, "max")
        spectrum = np.concatenate([np.log(mean.ravel() + 1e-6), np.log(peak.ravel() + 1e-6)])
        return spectrum, F._pool(F._pool(image.astype(np.float64), 32, 0, "mean"), 32, 1, "mean").ravel() / 255

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda im: (F.fingerprint_of(im), F.small_of(im)), images))
    for image, (fingerprint, small) in zip(images, got):
        spectrum, small_oracle = plain(image)
        np.testing.assert_array_equal(fingerprint[F.TILE**2 : -1], spectrum)
        np.testing.assert_array_equal(fingerprint, F.fingerprint_of(image))
        np.testing.assert_allclose(small, small_oracle, rtol=1e-6)


def test_fingerprint_beats_the_pixel_probe_when_only_the_generator_differs(tmp_path):
    """Same content distribution in every subset, a different generator trace each: the fingerprint
    probe must separate them; a logistic regression on the raw pixels cannot."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = kit.make(tmp_path / "d", k=K, content=0.0, trace=2.0, n_real=2, n_gen=30, n_test=30, seed=1)
    g, yg, _, _, t, yt, _ = kit.load_split(root)
    fp = S.probe_candidate("fingerprint", F.fingerprint_features(g), yg, F.fingerprint_features(t), S.folds_for(yg), K)
    fp_acc = float((fp.test.argmax(1) == yt).mean())
    flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    raw = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(flat(g), yg)
    raw_acc = float((raw.predict(flat(t)) == yt).mean())
    print(f"fingerprint probe {fp_acc:.3f} vs raw-pixel probe {raw_acc:.3f} (chance {1 / K:.3f})")
    assert fp_acc >= 0.95
    assert fp_acc - raw_acc >= 0.25
    assert fp.rests_on == "generator"


def _run(model, root, out, **kw):
    return score(model, root, out, labels=root / "test" / "labels.csv", use_cache=False, plots=False, progress=False, **kw)


def test_auto_beats_every_method_and_the_pixel_baselines(data, model, tmp_path):
    auto = _run(model, data, tmp_path / "auto")  # no --method: auto is the default with a training split
    assert auto.method == "auto"
    singles = {m: _run(model, data, tmp_path / m, method=m).metrics["accuracy"] for m in ("centroid", "knn")}
    base = _pixel_baselines(data)
    free = _run(None, data, tmp_path / "free")  # no model: pixels + fingerprints
    acc = auto.metrics["accuracy"]
    margins = {name: acc - v for name, v in {**singles, **base}.items()}
    print(f"auto {acc:.3f}, no model {free.metrics['accuracy']:.3f}; margins: "
          + ", ".join(f"{k} {v:+.3f}" for k, v in margins.items()))
    assert acc >= 0.95
    assert all(m >= 0 for m in margins.values()), margins
    assert free.method == "auto" and all(free.metrics["accuracy"] >= v for v in base.values())

    summary = json.loads(auto.summary_json.read_text())
    ev = summary["evidence"]
    assert {r["feature"] for r in ev["rows"]} >= {"centroid", "knn", "probe_embedding", "probe_pixels", "fingerprint", "stacked"}
    assert sum(r["chosen"] for r in ev["rows"]) == 1
    assert next(r for r in ev["rows"] if r["feature"] == "fingerprint")["rests_on"] == "generator"
    assert "GENERATOR" in ev["note"] or "CONTENT" in ev["note"]
    assert summary["score"]["larger_means"] == "more likely the chosen subset"
    # neighbours: real training images of the chosen subset, by file name
    import csv

    rows = list(csv.DictReader(auto.scores_csv.open()))
    for row in rows[:10]:
        names = row["neighbours"]
        c = int(row["decision"][1:]) - 1
        assert f"r{c}_" in names and "r" + str((c + 1) % K) + "_" not in names


def test_no_fit_sees_the_test_labels(data, model, tmp_path, monkeypatch):
    """Every logistic regression is fitted on training rows only: no test image's features, no more rows
    than the training split holds; and the decisions do not move when the test labels are scrambled."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    _, _, _, _, t, _, _ = kit.load_split(data)
    blocks = F.feature_blocks(t)
    test_rows = {row.tobytes() for name in ("fingerprint", "pixels_small") for row in blocks[name].astype(np.float64)}
    seen = []

    def spy(cls):
        fit = cls.fit

        def recorded(self, x, y=None, *a, **kw):
            x64 = np.asarray(x, dtype=np.float64)
            seen.append((cls.__name__, len(x64), {r.tobytes() for r in x64}))
            return fit(self, x, y, *a, **kw)

        monkeypatch.setattr(cls, "fit", recorded)

    spy(LogisticRegression)
    spy(StandardScaler)  # the probes standardise first: the scaler sees the raw feature rows
    first = _run(model, data, tmp_path / "a")
    n_train = 2 * 30 * K  # real + generated training images
    assert {name for name, _, _ in seen} == {"LogisticRegression", "StandardScaler"}
    assert all(n <= n_train for _, n, _ in seen)
    assert not any(rows & test_rows for _, _, rows in seen)
    # the check can fail: the same spy sees the test rows when they are fitted on
    seen.clear()
    S._probe().fit(blocks["fingerprint"], np.arange(len(t)) % K)
    assert any(rows & test_rows for _, _, rows in seen)

    scrambled = tmp_path / "scrambled"
    shutil.copytree(data, scrambled)
    lines = (scrambled / "test" / "labels.csv").read_text().split()
    ids, labs = zip(*(line.split(",") for line in lines))
    (scrambled / "test" / "labels.csv").write_text("\n".join(f"{i},{lab}" for i, lab in zip(ids, np.roll(labs, 7))) + "\n")
    second = _run(model, scrambled, tmp_path / "b")
    assert first.run_csv.read_text() == second.run_csv.read_text()


def test_without_training_split_auto_falls_back_to_the_models_centroids(data, tmp_path):
    only_test = tmp_path / "only_test"
    shutil.copytree(data / "test", only_test / "test")
    cents = np.random.default_rng(0).standard_normal((K, 16)).tolist()
    path, _, _ = make_onnx(tmp_path / "c.onnx", size=64, pool=4, dim=16, classes=("t1", "t2", "t3"), centroids=cents)
    res = score(path, only_test, tmp_path / "o", method="auto", use_cache=False, plots=False, progress=False)
    ev = res.summary["evidence"]
    assert res.summary["method"]["params"]["fallback"] == "centroid"
    assert "no training split" in ev["note"] and ev["rows"][0]["chosen"]
    plain = score(path, only_test, tmp_path / "p", method="centroid", use_cache=False, plots=False, progress=False)
    assert res.run_csv.read_text() == plain.run_csv.read_text()


def test_choose_prefers_accuracy_then_the_stacked_probe():
    y = np.array([0, 1, 0, 1])
    right = np.eye(2)[y]
    wrong = np.eye(2)[1 - y]
    cands = [S.Candidate("centroid", right, right, 1.0), S.Candidate("stacked", right, right, 1.0),
             S.Candidate("fingerprint", wrong, wrong, 0.0), S.Candidate("classifier", right, right, 1.0, in_sample=True)]
    assert S.choose(cands).name == "stacked"
    assert S.choose([cands[0], cands[2]]).name == "centroid"


@pytest.mark.parametrize("metric", ("cosine", "l2"))
def test_knn_and_centroid_candidates_match_a_numpy_oracle(metric):
    """k-NN leave-one-out votes and centroid closeness against the full similarity matrix (NumPy)."""
    rng = np.random.default_rng(4)
    k, d, nn = 3, 6, 5
    y, yr = rng.integers(0, k, 40), np.repeat(np.arange(k), 7)
    gen, real, test = (rng.standard_normal((n, d)).astype(np.float32) for n in (40, len(yr), 11))

    def close(q, r):
        q, r = q.astype(np.float64), r.astype(np.float64)
        if metric == "cosine":
            return (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (r / np.linalg.norm(r, axis=1, keepdims=True)).T
        return -np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1))

    knn = S.knn_candidate(gen, y, test, real, yr, k, metric, nn)
    base, labels = np.concatenate([real, gen]), np.concatenate([yr, y])
    s = close(gen, base)
    s[np.arange(40), len(yr) + np.arange(40)] = -np.inf  # leave one out
    votes = np.stack([np.bincount(labels[np.argsort(-row, kind="stable")[:nn]], minlength=k) for row in s]) / nn
    np.testing.assert_array_equal(np.floor(knn.oof * nn + 1e-9), votes * nn)
    st = close(test, base)
    votes_t = np.stack([np.bincount(labels[np.argsort(-row, kind="stable")[:nn]], minlength=k) for row in st]) / nn
    np.testing.assert_array_equal(np.floor(knn.test * nn + 1e-9), votes_t * nn)
    rows = np.array([0, 3, 4, 17, 39])  # the CV sample's rows only: the same votes as in the search of all
    some = S.knn_candidate(gen, y, test, real, yr, k, metric, nn, rows=rows)
    np.testing.assert_array_equal(some.oof, knn.oof[rows])
    np.testing.assert_array_equal(some.test, knn.test)
    assert some.cv_accuracy == pytest.approx(float((knn.oof[rows].argmax(1) == y[rows]).mean()))

    cen = S.centroid_candidate(gen, y, test, real, yr, k, metric)
    cents = np.stack([real[yr == c].astype(np.float64).mean(0) for c in range(k)])
    np.testing.assert_allclose(cen.test, close(test, cents), rtol=1e-5, atol=1e-5)
    assert cen.cv_accuracy == pytest.approx(float((close(gen, cents).argmax(1) == y).mean()))


def test_auto_with_a_classifier_model_beats_its_argmax(data, tmp_path):
    """A classifier model: its logits are shown in the evidence (in-sample on the training images, so never
    chosen), and auto is at least as accurate as the classifier's own argmax on the test split."""
    path, _, _ = make_onnx(tmp_path / "cls.onnx", kind="classifier", size=64, pool=4, dim=16, classes=("t1", "t2", "t3"))
    auto = _run(path, data, tmp_path / "auto")
    argmax = _run(path, data, tmp_path / "cls", method="classifier")
    print(f"classifier model: auto {auto.metrics['accuracy']:.3f} vs argmax {argmax.metrics['accuracy']:.3f}")
    assert auto.metrics["accuracy"] >= argmax.metrics["accuracy"]
    rows = {r["feature"]: r for r in auto.summary["evidence"]["rows"]}
    assert "classifier" in rows and not rows["classifier"]["chosen"]



def test_pixel_features_come_from_the_one_decode_and_the_cache(data, model, tmp_path, monkeypatch):
    """The fingerprints and 32×32 pixels are computed in the pipeline's one decode (no second read of the
    images), cached with the embeddings (a re-score computes nothing), and a runner that leaves them to
    the method (as Ray does) gets the same decisions and scores, byte for byte."""
    from fprt.runtime.evidence import fingerprint

    reads = []
    blocks = fingerprint.blocks_of_files
    monkeypatch.setattr(fingerprint, "blocks_of_files", lambda paths, **kw: reads.append(len(paths)) or blocks(paths, **kw))
    kw = dict(labels=data / "test" / "labels.csv", plots=False, progress=False, cache=tmp_path / "cache")
    first = score(model, data, tmp_path / "first", **kw)
    n = sum(1 for _ in (data / "train").rglob("*.png")) + sum(1 for _ in (data / "test").rglob("*.png"))
    t1 = json.loads(first.summary_json.read_text())
    assert reads == [] and t1["timings"]["pixel_features"]["items"] == n
    again = score(model, data, tmp_path / "again", **kw)
    t2 = json.loads(again.summary_json.read_text())
    assert t2["counts"]["computed"] == 0 and t2["counts"]["cache_hits"] == n and "pixel_features" not in t2["timings"]
    assert reads == []

    # and a cache that holds only the model's rows (a --method centroid run): auto computes only the pixel features
    other, topped, had = rescore_other_ways(model, data, tmp_path, kw, peer_method="centroid")
    assert sum(reads) == n  # test, generated and real training images, read again by the method
    t3 = json.loads(topped.summary_json.read_text())
    assert 0 < had < n and t3["counts"]["computed"] == n - had and t3["timings"]["pixel_features"]["items"] == n
    assert_same_outputs(first, again, other, topped)


def test_real_training_images_get_no_fingerprint(data, model, tmp_path, monkeypatch):
    """Real images carry no generator trace and nothing reads their fingerprint: the one decode computes it
    for the test and generated training images only (the real ones get a NaN row, cached like any row)."""
    computed = []
    fingerprint_of = F.PER_IMAGE["fingerprint"]
    monkeypatch.setitem(F.PER_IMAGE, "fingerprint", lambda im: computed.append(1) or fingerprint_of(im))
    score(model, data, tmp_path / "out", plots=False, progress=False, cache=tmp_path / "cache")
    n_real = sum(1 for _ in (data / "train" / "real").rglob("*.png"))
    n_traced = sum(1 for _ in (data / "train" / "generated").rglob("*.png")) + sum(1 for _ in (data / "test").rglob("*.png"))
    assert n_real > 0 and len(computed) == n_traced


def test_a_generated_image_with_a_real_images_bytes_gets_its_fingerprint(data, model, tmp_path, monkeypatch):
    """The cache is keyed by content: a generated image (training or test) that is byte for byte a real
    training image finds the real image's NaN fingerprint row; the method computes that fingerprint from the
    file, so every fingerprint it reads is the image's own (oracle: ``fingerprint_of`` of the decoded file)."""
    from PIL import Image

    d = tmp_path / "d"
    shutil.copytree(data, d)
    real = sorted((d / "train" / "real" / "t1").glob("*.png"))
    shutil.copy(real[0], d / "train" / "generated" / "gen_t1" / "copy_of_real.png")
    shutil.copy(real[1], d / "test" / "generated_unknown" / "u_copy.png")
    labels = d / "test" / "labels.csv"
    labels.write_text(labels.read_text() + "u_copy,t1\n")
    from fprt.runtime.methods import auto_subsets

    seen = []
    blocks = auto_subsets._pixel_blocks
    monkeypatch.setattr(auto_subsets, "_pixel_blocks", lambda ctx: seen.append((ctx.sets, blocks(ctx))) or seen[-1][1])
    for run in ("first", "again"):  # on an empty cache (the real image decoded first), then from the cache
        score(model, d, tmp_path / run, plots=False, progress=False, cache=tmp_path / "cache")
        sets, px = seen.pop()
        for name, copy, original in (("ref_generated", "copy_of_real.png", real[0]), ("test", "u_copy.png", real[1])):
            assert not np.isnan(px[name]["fingerprint"]).any(), (run, name)
            row = [Path(p).name for p in sets[name].paths].index(copy)
            own = F.fingerprint_of(np.asarray(Image.open(original)))
            np.testing.assert_array_equal(px[name]["fingerprint"][row], own)
        # the real images' own rows are never read: NaN, but for the one a test image (decoded first) shares bytes with
        nan = np.isnan(px["ref_real"]["fingerprint"]).all(axis=1)
        assert [Path(p).name for p, n in zip(sets["ref_real"].paths, nan) if not n] == [real[1].name], run


def test_large_training_splits_cross_validate_on_a_stratified_sample(monkeypatch):
    """Beyond CV_ROWS generated training images the CV fits see a stratified sample (and at most CV_ROWS real
    images); the final fits, whose scores decide the test images, see every training image."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setattr(S, "CV_ROWS", 60)
    rng = np.random.default_rng(3)
    k, n_gen, n_real, d = 3, 150, 90, 8
    centers = rng.normal(0, 3, (k, d))
    y, yr, yt = rng.integers(0, k, n_gen), rng.integers(0, k, n_real), rng.integers(0, k, 40)
    x = lambda lab: (centers[lab] + rng.normal(0, 1, (len(lab), d))).astype(np.float32)  # noqa: E731
    inp = S.SubsetsInputs(classes=["t1", "t2", "t3"], y_gen=y, y_real=yr,
                          px_gen={"pixels_small": x(y), "fingerprint": x(y)}, px_real={"pixels_small": x(yr)},
                          px_test={"pixels_small": x(yt), "fingerprint": x(yt)}, emb_gen=x(y), emb_real=x(yr),
                          emb_test=x(yt), metric="l2")
    sizes = []
    fit = LogisticRegression.fit
    monkeypatch.setattr(LogisticRegression, "fit", lambda self, a, b, *r, **kw: sizes.append(len(a)) or fit(self, a, b, *r, **kw))
    cands, folds = S.candidates(inp)
    plan = inp.cv_plan
    assert plan.sampled and len(plan.rows) == 60 and plan.total == n_gen
    expected = np.bincount(y, minlength=k) * 60 / n_gen  # stratified: each subset's share kept
    assert np.all(np.abs(np.bincount(y[plan.rows], minlength=k) - expected) <= 1)
    assert all(len(c.oof) == 60 for c in cands)
    assert {len(va) for _, va in folds} <= {12}  # 5 folds over the sample
    # per probe: 5 CV fits on 48 sampled generated + 60 sampled real images, one final fit on all 150 (+ 90)
    assert sizes.count(48 + 60) == 10 and sizes.count(n_gen + n_real) == 2  # probe_embedding, probe_pixels
    assert sizes.count(48) == 5 + 5 and sizes.count(n_gen) == 1  # fingerprint (no real images); stacked on 48
    assert max(c.cv_accuracy for c in cands) > 0.9


def test_candidates_side_by_side_equal_one_after_the_other(tmp_path, monkeypatch):
    """The candidates run on one thread per CPU: the same scores, bit for bit and in the same order, as on
    one thread (``default_workers`` 1); ``side_by_side`` keeps the jobs' order whatever order they ran in."""
    root = kit.make(tmp_path / "d", k=K, n_real=12, n_gen=15, n_test=20, seed=3)
    g, yg, r, yr, t, _, _ = kit.load_split(root)
    rng = np.random.default_rng(0)
    proj = rng.standard_normal((g[0].size, 16)).astype(np.float32)

    def inputs():
        flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255  # noqa: E731
        return S.SubsetsInputs(classes=[f"t{i + 1}" for i in range(K)], y_gen=yg, y_real=yr,
                               px_gen=F.feature_blocks(g), px_real=F.feature_blocks(r), px_test=F.feature_blocks(t),
                               emb_gen=flat(g) @ proj, emb_real=flat(r) @ proj, emb_test=flat(t) @ proj)

    monkeypatch.setattr("fprt.data.loader.default_workers", lambda: 2)  # side by side on any machine
    side, _ = S.candidates(inputs())
    monkeypatch.setattr("fprt.data.loader.default_workers", lambda: 1)
    alone, _ = S.candidates(inputs())
    assert [c.name for c in side] == [c.name for c in alone] == [
        "centroid", "knn", "probe_embedding", "probe_pixels", "fingerprint", "stacked"]
    for a, b in zip(side, alone):
        np.testing.assert_array_equal(a.oof, b.oof)
        np.testing.assert_array_equal(a.test, b.test)
        assert a.cv_accuracy == b.cv_accuracy and a.weights == b.weights
    monkeypatch.setattr("fprt.data.loader.default_workers", lambda: 4)
    jobs = [np.zeros(n) for n in (1, 50, 5, 500)]  # run largest first, returned in the jobs' order
    assert S.side_by_side(lambda job: len(job[1][0]), [(None, (a,), {}) for a in jobs]) == [1, 50, 5, 500]
