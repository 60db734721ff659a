"""Membership evidence: per real image, how strongly the generated set holds a trace of it.

Every feature is "larger = more likely used" and is measured twice where it can be: against the
generated set, and against the *other* real images (the "typical image" baseline of VCMI 2023: an
image that looks like every other scan also looks like many generated ones). The margin between the
two removes what is merely typical.

==========================  ==================================================================
feature                     what it catches
==========================  ==================================================================
embedding_best              (with a model) the learned embedding's best similarity to the generated set
embedding_margin            ... minus its best similarity to another real image
pixel_best_ncc              near-copies, also restyled ones: best cosine of per-image zero-mean unit-norm
                            pixels at 32×32 (= normalised cross-correlation), via the similarity extension
pixel_margin                ... minus the best NCC to another real image
edge_best_ncc               moved and turned copies, coarsely: NCC of the blurred gradient magnitude
                            (a structure map that a move of a few px barely changes) at 32×32
edge_margin                 ... minus the best such NCC to another real image
geometric_patch_ncc         moved, turned, rescaled, smoothly warped copies: patch-wise NCC with a ±5 px
                            local search (``geometry.patch_ncc``) on the top-k candidates
geometric_margin            ... minus the same score on the real image's nearest other real images
ssim_best                   SSIM (the 2023 winner's measure) on the same candidates
==========================  ==================================================================

Candidates: the union of each real image's top-k generated images by embedding, by raw pixels and
by structure map (``reductions.search``, one pass each, never the all-pairs matrix); only they are verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fprt.errors import FprtError
from fprt.runtime.evidence.geometry import VERIFY_SIZE, band_pass, resize_stack, ssim_candidates, verify_candidates
from fprt.runtime.evidence.parallel import per_image
from fprt.runtime.methods.reductions import row_union, search

PIXEL_SIZE = 32  # px: raw-pixel vectors (1024 values) for the NCC search
EDGE_SIGMA = 4.0  # px at 128: blur of the gradient magnitude (the "structure map"), tolerant of moves of a few px
CATCHES = {
    "embedding_best": "what the model learned to match",
    "embedding_margin": "what the model matches, beyond a typical scan",
    "pixel_best_ncc": "near-copies, restyled copies",
    "pixel_margin": "near-copies, beyond a typical scan",
    "edge_best_ncc": "moved/turned copies (coarse structure map)",
    "edge_margin": "moved copies (structure map), beyond a typical scan",
    "geometric_patch_ncc": "moved/turned/rescaled/warped copies",
    "geometric_margin": "moved/warped copies, beyond a typical scan",
    "ssim_best": "pixel-aligned copies (SSIM)",
}


def pixel_vectors(images: np.ndarray, size: int = PIXEL_SIZE) -> np.ndarray:
    """N images → N×size² float32 rows with zero mean and unit norm (their cosine is the NCC)."""
    x = resize_stack(images, size).reshape(len(images), -1).astype(np.float64)
    x -= x.mean(1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float32)


def edge_vectors(images128: np.ndarray, size: int = PIXEL_SIZE, sigma: float = EDGE_SIGMA) -> np.ndarray:
    """Structure maps: blurred Sobel gradient magnitude of each 128-px image, as zero-mean unit-norm rows."""
    import cv2

    def one(im: np.ndarray) -> np.ndarray:
        im = np.asarray(im, np.float32)
        return cv2.GaussianBlur(np.hypot(cv2.Sobel(im, cv2.CV_32F, 1, 0), cv2.Sobel(im, cv2.CV_32F, 0, 1)), (0, 0), sigma)

    return pixel_vectors(per_image(one, images128, np.empty(np.shape(images128), np.float32)), size)


@dataclass
class MembershipEvidence:
    """Evidence of one split: feature columns (M each), and the verified candidates per real image."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    candidates: np.ndarray | None = None  # M×c indices into the generated set (−1: none), best geometric first
    candidate_scores: np.ndarray | None = None  # M×c geometric score of each candidate

    @property
    def names(self) -> list[str]:
        return list(self.features)

    def matrix(self, names: list[str] | None = None) -> np.ndarray:
        return np.column_stack([self.features[n] for n in (names or self.names)]).astype(np.float64)


def _verify(r128: np.ndarray, g128: np.ndarray, cand: np.ndarray, typical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``verify_candidates`` of each real image with its generated candidates (M×c) and the best of it with
    its nearest other real images (M), on the band-passed images: one call over the generated and the real
    images together (only the generated images some real image names), so each real image's tiles are
    prepared once."""
    used = np.unique(cand[cand >= 0])
    n_gen = len(used)
    both = np.empty((n_gen + len(r128), *np.shape(r128)[1:]), np.float32)
    band_pass(g128, out=both[:n_gen], index=used)
    band_pass(r128, out=both[n_gen:])
    cols = np.hstack([np.where(cand >= 0, np.searchsorted(used, cand), -1), np.where(typical >= 0, typical + n_gen, -1)])
    scores = verify_candidates(both[n_gen:], both, cols)
    return scores[:, : cand.shape[1]], scores[:, cand.shape[1] :].max(1)


def membership_evidence(real_pixels: np.ndarray, gen_pixels: np.ndarray, *, real_emb=None, gen_emb=None,
                        metric: str = "cosine", k: int = 3, k_edge: int = 5, k_typical: int = 2) -> MembershipEvidence:
    """The evidence features of each real image against the generated images (see the module doc).

    ``*_pixels``: N×H×W images (any size; verified at 128 px). ``*_emb``: the model's embeddings, or None."""
    if len(real_pixels) < 2:
        raise FprtError("membership evidence compares each real image with the other real images: it needs at least 2")
    if len(gen_pixels) < 1:
        raise FprtError("membership evidence needs at least one generated image")
    r128, g128 = resize_stack(real_pixels, VERIFY_SIZE), resize_stack(gen_pixels, VERIFY_SIZE)
    pr, pg = pixel_vectors(r128), pixel_vectors(g128)
    k_gen, k_real = min(k, len(pg)), min(k_typical, len(pr) - 1)
    to_gen = search(pr, pg, metric="cosine", k=k_gen)
    to_real = search(pr, pr, metric="cosine", k=k_real, exclude_self=True)
    ev = MembershipEvidence()
    er, eg = edge_vectors(r128), edge_vectors(g128)
    edge_gen = search(er, eg, metric="cosine", k=min(k_edge, len(eg)))
    edge_real = search(er, er, metric="cosine", k=1, exclude_self=True)
    lists = [to_gen.row_indices, edge_gen.row_indices]
    if real_emb is not None and gen_emb is not None:
        e_gen = search(real_emb, gen_emb, metric=metric, k=k_gen)
        e_real = search(real_emb, real_emb, metric=metric, k=1, exclude_self=True)
        ev.features["embedding_best"] = e_gen.row_values[:, 0]
        ev.features["embedding_margin"] = e_gen.row_values[:, 0] - e_real.row_values[:, 0]
        lists.insert(0, e_gen.row_indices)
    ev.features["pixel_best_ncc"] = to_gen.row_values[:, 0]
    ev.features["pixel_margin"] = to_gen.row_values[:, 0] - to_real.row_values[:, 0]
    ev.features["edge_best_ncc"] = edge_gen.row_values[:, 0]
    ev.features["edge_margin"] = edge_gen.row_values[:, 0] - edge_real.row_values[:, 0]
    cand = row_union(*lists)
    geo, geo_typical = _verify(r128, g128, cand, to_real.row_indices)
    best_geo = geo.max(1)
    ev.features["geometric_patch_ncc"] = best_geo
    ev.features["geometric_margin"] = best_geo - geo_typical
    ev.features["ssim_best"] = ssim_candidates(r128, g128, cand).max(1)
    order = np.argsort(-geo, axis=1, kind="stable")
    ev.candidates = np.take_along_axis(cand, order, 1)
    ev.candidate_scores = np.take_along_axis(geo, order, 1)
    return ev
