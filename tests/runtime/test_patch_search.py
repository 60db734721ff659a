"""The batched patch-wise NCC search (``fprt.runtime.evidence.patch_search``) against scikit-image's
``match_template`` run tile by tile, and its batching and threading against themselves."""

from __future__ import annotations

import numpy as np
import pytest
from membership_testkit import acquire, body_templates, move, scan

from fprt.runtime.evidence import patch_search
from fprt.runtime.evidence.geometry import patch_ncc, verification_images, verify_candidates, verify_pairs
from fprt.runtime.evidence.patch_search import search_pairs, search_space, tile_set


def _oracle(real: np.ndarray, other: np.ndarray, patch: int, search: int):
    """Per tile of ``real``: best NCC (skimage.feature.match_template) within ±search px in ``other``, the
    top-left corner of that window, or NaN for a flat tile; windows that leave the image are not searched."""
    from skimage.feature import match_template

    s = real.shape[0]
    best, at = [], []
    for y in range(0, s - patch + 1, patch):
        for x in range(0, s - patch + 1, patch):
            tpl = real[y : y + patch, x : x + patch]
            if tpl.std() < patch_search.MIN_PATCH_STD:
                best.append(np.nan)
                at.append((0, 0))
                continue
            y0, x0 = max(0, y - search), max(0, x - search)
            res = match_template(other[y0 : min(s, y + patch + search), x0 : min(s, x + patch + search)], tpl)
            dy, dx = np.unravel_index(np.argmax(res), res.shape)
            best.append(res.max())
            at.append((y0 + dy, x0 + dx))
    return np.array(best), np.array(at)


@pytest.fixture(scope="module")
def scans():
    """Band-passed 128-px scans: 6 real ones, 6 others of which 0-2 are moved, turned, warped copies of real 0-2."""
    rng = np.random.default_rng(11)
    templates = body_templates(rng, n=2)
    originals = [scan(rng, templates) for _ in range(9)]
    real = [acquire(o, rng) for o in originals[:6]]
    copies = [acquire(move(o, rng, dx=4.0, dy=-3.0, angle=2.0, scale=1.02, warp=1.5), rng) for o in originals[:3]]
    others = [acquire(o, rng) for o in originals[6:]]
    v = verification_images(np.stack(real + copies + others))
    v[5, :40, :40] = 0.0  # flat tiles: skipped as in the oracle
    return v[:6], v[6:]


@pytest.mark.parametrize("patch,search", [(32, 5), (16, 5), (32, 3)])
def test_tile_search_equals_match_template_tile_by_tile(scans, patch, search):
    real, other = scans
    rows, cols = np.repeat(np.arange(6), 6), np.tile(np.arange(6), 6)
    best, at = search_pairs(tile_set(real, patch), rows, search_space(other, patch, search), cols)
    for k, (i, j) in enumerate(zip(rows, cols)):
        want, want_at = _oracle(real[i], other[j], patch, search)
        np.testing.assert_array_equal(np.isnan(best[k]), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_allclose(best[k, ok], want[ok], atol=2e-5)
        clear = ok & (np.abs(best[k] - want) < 1e-6)  # same peak value: same place unless a near-tie
        assert (at[k][clear] == want_at[clear]).mean() > 0.95
    assert np.isnan(best[rows == 5]).any() and not np.isnan(best[rows == 0]).any()


def test_copies_score_above_other_scans(scans):
    real, other = scans
    s = verify_candidates(real[:3], other, np.array([[0, 3, 4], [1, 3, 5], [2, 4, 5]]))
    assert np.all(s[:, 0] > s[:, 1:].max(1) + 0.1), s


@pytest.mark.parametrize("workers", [1, 3])
def test_batching_and_threads_change_no_number(scans, monkeypatch, workers):
    import torch

    real, other = scans
    rows, cols = np.repeat(np.arange(6), 6), np.tile(np.arange(6), 6)
    threads = torch.get_num_threads()
    want = verify_pairs(real, other, rows, cols)
    assert torch.get_num_threads() == threads  # torch's own setting is given back
    assert want == pytest.approx([patch_ncc(real[i], other[j]) for i, j in zip(rows, cols)], abs=0)
    monkeypatch.setattr(patch_search, "PAIR_BATCH", 5)  # 8 batches over the pool's threads
    monkeypatch.setattr("fprt.data.loader.default_workers", lambda: workers)
    np.testing.assert_array_equal(verify_pairs(real, other, rows, cols), want)
    got = verify_candidates(real, other, np.where(np.eye(6, dtype=bool), -1, np.arange(6)[None]))
    assert np.all(np.isneginf(np.diag(got)))
