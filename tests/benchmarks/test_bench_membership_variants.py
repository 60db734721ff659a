"""``benchmarks/bench_membership_variants.py``: each variant changes exactly what it names for the length of its
block, and every evidence function is fprt's own again after it (oracle: the evidence called with the same
settings directly)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_membership_variants as V  # noqa: E402

from fprt.runtime.evidence import geometry as G  # noqa: E402
from fprt.runtime.evidence import membership as M  # noqa: E402
from fprt.runtime.methods import auto_membership as AM  # noqa: E402


def _images(n: int, seed: int) -> np.ndarray:
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 1, (n, 6, 6)).astype(np.float32)
    smooth = np.stack([np.asarray(Image.fromarray(c, mode="F").resize((128, 128), Image.Resampling.BICUBIC)) for c in coarse])
    return np.clip(120 + 30 * smooth + rng.normal(0, 4, (n, 128, 128)), 0, 255).astype(np.uint8)


def test_each_variant_is_the_evidence_with_its_settings_and_is_undone_after():
    real, gen = _images(12, 0), _images(16, 1)
    gen[:4] = np.roll(real[:4], 3, axis=2)  # moved copies: the alignment and the candidates matter
    originals = (G.verify_pairs, M.membership_evidence, AM.membership_evidence, M.pixel_vectors, M.edge_vectors)
    with V.variant(V.VARIANTS["B no alignment"]):
        b = M.membership_evidence(real, gen)
    with V.variant(V.VARIANTS["E D + 16 px vectors"]):
        assert M.pixel_vectors(real).shape == (12, 16 * 16) and M.edge_vectors(real.astype(np.float32)).shape == (12, 256)
        e = AM.membership_evidence(real, gen)
    assert (G.verify_pairs, M.membership_evidence, AM.membership_evidence, M.pixel_vectors, M.edge_vectors) == originals
    a = M.membership_evidence(real, gen)

    r128, g128 = G.verification_images(real), G.verification_images(gen)
    i, j = np.nonzero(a.candidates >= 0)
    plain = np.full(len(real), -np.inf)  # each real image's best unaligned patch score over the same candidates
    np.maximum.at(plain, i, G.verify_pairs(r128, g128, i, a.candidates[i, j], align=False))
    np.testing.assert_allclose(b.features["geometric_patch_ncc"], plain, rtol=1e-12)
    assert np.all(a.features["geometric_patch_ncc"] >= b.features["geometric_patch_ncc"] - 1e-12)  # aligned: the better of two
    assert M.pixel_vectors(real).shape == (12, 32 * 32)
    assert e.candidates.shape[1] <= a.candidates.shape[1]  # fewer structure-map candidates
