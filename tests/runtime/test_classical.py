"""SSIM and pHash against independent formulas (scipy), ties and self-exclusion included."""

from __future__ import annotations

import numpy as np

from fprt.runtime.methods.classical import SsimIndex, hamming_from_ip, phash_bits, ssim_pair


def _imgs(rng, n, s=24):
    base = rng.integers(0, 256, size=(3, s, s)).astype(np.float64)
    out = [np.clip(base[i % 3] + rng.normal(0, 10 + 5 * i, size=(s, s)), 0, 255) for i in range(n)]
    return np.stack(out).astype(np.uint8)


def test_ssim_topk_against_formula(rng):
    q, db = _imgs(rng, 5), _imgs(rng, 13)
    full = np.array([[ssim_pair(a, b) for b in db] for a in q])
    vals, idx = SsimIndex(db, pairs=8).topk(q, 3)
    order = np.argsort(-full, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(vals, np.take_along_axis(full, order, 1), rtol=1e-5, atol=1e-5)
    assert abs(ssim_pair(db[0], db[0]) - 1.0) < 1e-12


def test_ssim_exclude_self_and_ties(rng):
    db = _imgs(rng, 6)
    db[4] = db[1]  # exact duplicate: both match each other with SSIM 1, never themselves
    vals, idx = SsimIndex(db, pairs=8).topk(db, 2, exclude_self=True)
    assert idx[1, 0] == 4 and idx[4, 0] == 1
    assert (idx[:, 0] != np.arange(6)).all() and (idx[:, 1] != np.arange(6)).all()
    np.testing.assert_allclose(vals[1, 0], 1.0, rtol=1e-6)
    dup = np.stack([db[0]] * 4)
    v, i = SsimIndex(dup, pairs=3).topk(dup[:1], 4)
    assert i.tolist() == [[0, 1, 2, 3]]  # ties go to the lower index


def test_phash_against_dct_definition(rng):
    from PIL import Image
    from scipy.fft import dctn

    img = _imgs(rng, 1, s=64)[0]
    small = np.asarray(Image.fromarray(img).resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(small, type=2)[:8, :8]  # unnormalised DCT-II, same as scipy.fftpack.dct twice
    np.testing.assert_array_equal(phash_bits(img), (low > np.median(low)).reshape(-1))
    a, b = phash_bits(img), phash_bits(np.clip(img.astype(int) + 40, 0, 255).astype(np.uint8))
    pa, pb = np.where(a, 1.0, -1.0), np.where(b, 1.0, -1.0)
    assert hamming_from_ip(pa @ pb) == np.count_nonzero(a != b)


def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def test_ssim_prefiltered_topk_against_the_exact_path():
    """ssim-max's default: exact SSIM on the union of two proxies' candidates (raw-pixel NCC, SSIM without its
    covariance term). Its values are exact SSIM values (scikit-image as oracle), never above the exact maximum,
    and they find the exact maximum (to 1e-6) for (nearly) every query on scan-like data with less than half
    of the database as candidates (measured: every query; with seed 3, 22 of 24, the two misses within 0.002)."""
    from membership_testkit import body_templates, draw_split

    from fprt.runtime.methods.classical import SsimIndex, ssim_topk_prefiltered

    rng = np.random.default_rng(2)
    used, not_used, gen, _ = draw_split(rng, body_templates(rng), 12, 12, 60)
    real, gen = np.stack(used + not_used), np.stack(gen)  # 24 real, 72 generated (36 traces)
    exact = np.array([[_skimage_ssim(a, b) for b in gen] for a in real])
    pv, pi = ssim_topk_prefiltered(real, gen, 3, candidates=16)  # at most 32 of 72 get an exact SSIM
    assert pv.shape == pi.shape == (24, 3)
    np.testing.assert_allclose(pv, np.take_along_axis(exact, pi, 1), atol=1e-5)
    assert np.all(pv[:, 0] <= exact.max(1) + 1e-6)
    found = np.abs(pv[:, 0] - exact.max(1)) <= 1e-6
    assert found.mean() >= 0.95, found.mean()  # recall of the exact maximum (measured 1.0)
    assert np.all(exact.max(1) - pv[:, 0] < 0.01)
    ev, ei = SsimIndex(gen).topk(real, 1)
    assert np.array_equal(pi[found, 0], ei[found, 0])
    rv, _ = SsimIndex(real).topk(real, 1, exclude_self=True)
    qv, qi = ssim_topk_prefiltered(real, real, 1, exclude_self=True, candidates=8)
    assert np.all(qi[:, 0] != np.arange(len(real))) and np.all(qv[:, 0] <= rv[:, 0] + 1e-5)
