"""Classical baselines of the 2023 overview, served through the same pipeline as the models.

- **SSIM** (Wang, Bovik, Sheikh & Simoncelli 2004): 11×11 Gaussian window (σ = 1.5), K1 = 0.01,
  K2 = 0.03, dynamic range L = 255, mean of the SSIM map over the valid region (no padding).
  Vectorised in torch over blocks of image pairs: the per-image means and variances are filtered
  once, only the cross term ``G * (x·y)`` is filtered per pair, and a running top-k is kept, so
  the M×N matrix of pairs is never stored. SSIM is not an inner product, which is why it is the
  one score that does not go through ``fprt.runtime.similarity``.
- **pHash** (the DCT perceptual hash of the ``imagehash`` package): the image resized to 32×32
  with Lanczos, 2-D DCT-II, the top-left 8×8 coefficients compared with their median → 64 bits.
  Stored as ±1 vectors, so the Hamming distance is ``(64 - a·b) / 2`` and the nearest hashes come
  out of the similarity extension's inner-product top-k.

``SsimFeatures`` and ``PhashFeatures`` stand where a model backend stands in the pipeline
(``meta``, ``model_sha256``, ``infer(pixels)``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess

SSIM_K1, SSIM_K2, SSIM_L = 0.01, 0.03, 255.0
SSIM_WIN, SSIM_SIGMA = 11, 1.5
PHASH_BITS = 64


def gaussian_window(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def band_matrix(n: int, g) -> "torch.Tensor":  # noqa: F821
    """n × (n-k+1) matrix B with B[i, j] = g[i - j]: ``x @ B`` is the valid correlation of x's rows with g."""
    import torch

    k = g.shape[0]
    b = torch.zeros((n, n - k + 1), dtype=g.dtype)
    for t in range(k):
        idx = torch.arange(n - k + 1)
        b[idx + t, idx] = g[t]
    return b


def _filter(x, g):
    """Separable valid Gaussian filter of B×H×W tensors as two GEMMs (fast on the CPU for one channel).

    Returns the B×W'×H' map TRANSPOSED; every map the SSIM formula combines goes through here, so they
    agree, and the mean over the map does not care."""
    b, h, w = x.shape
    y = (x.reshape(b * h, w) @ band_matrix(w, g)).reshape(b, h, -1)
    w2 = y.shape[2]
    y = y.transpose(1, 2).reshape(b * w2, h) @ band_matrix(h, g)
    return y.reshape(b, w2, -1)


class SsimIndex:
    """SSIM of every query image against a database, reduced to a running top-k per query.

    float32 arithmetic (the filtered moments of 8-bit images need no more: within 1e-5 of the
    float64 formula), blocks of ``pairs`` image pairs per filter call."""

    def __init__(self, database: np.ndarray, *, pairs: int = 2048) -> None:
        import torch

        self.torch = torch
        self.g = torch.from_numpy(gaussian_window()).to(torch.float32)
        self.db, self.db_mu, self.db_var = self._moments(database)
        self.pairs = pairs

    def _moments(self, images: np.ndarray):
        t = self.torch.from_numpy(np.asarray(images, dtype=np.float32))
        mu = _filter(t, self.g)
        var = _filter(t * t, self.g) - mu * mu
        return t, mu, var

    def _ssim_block(self, q, q_mu, q_var, j0: int, j1: int):
        """SSIM of each query against database rows j0:j1 → (len(q), j1-j0)."""
        c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
        r, r_mu, r_var = self.db[j0:j1], self.db_mu[j0:j1], self.db_var[j0:j1]
        a, b = len(q), j1 - j0
        prod = (q[:, None] * r[None]).reshape(a * b, *q.shape[1:])
        cross = _filter(prod, self.g).reshape(a, b, *r_mu.shape[1:])
        mumu = q_mu[:, None] * r_mu[None]
        cov = cross - mumu
        num = (2 * mumu + c1) * (2 * cov + c2)
        den = (q_mu[:, None] ** 2 + r_mu[None] ** 2 + c1) * (q_var[:, None] + r_var[None] + c2)
        return (num / den).mean(dim=(2, 3), dtype=self.torch.float64)

    def topk(self, queries: np.ndarray, k: int, *, exclude_self: bool = False):
        """(values M×k, indices M×k) of the k most similar database images per query (ties → lower index).

        ``exclude_self``: queries ARE the database (same order); a query never matches itself.
        """
        torch = self.torch
        n = len(self.db)
        k = min(k, n - 1 if exclude_self else n)
        q_all, q_mu_all, q_var_all = self._moments(queries)
        vals = np.empty((len(queries), k))
        idxs = np.empty((len(queries), k), dtype=np.int64)
        nb = max(1, min(n, 256))
        qb = max(1, self.pairs // nb)
        for i0 in range(0, len(queries), qb):
            i1 = min(i0 + qb, len(queries))
            q, q_mu, q_var = q_all[i0:i1], q_mu_all[i0:i1], q_var_all[i0:i1]
            best_v = torch.full((i1 - i0, 0), -torch.inf, dtype=torch.float64)
            best_i = torch.zeros((i1 - i0, 0), dtype=torch.int64)
            for j0 in range(0, n, nb):
                j1 = min(j0 + nb, n)
                s = self._ssim_block(q, q_mu, q_var, j0, j1)
                cols = torch.arange(j0, j1).expand(i1 - i0, -1)
                if exclude_self:
                    s = s.masked_fill(torch.arange(i0, i1)[:, None] == cols, -torch.inf)
                # earlier blocks hold lower indices and are already in (value desc, index asc) order:
                # a stable sort of the concatenation keeps ties at the lower index
                v = torch.cat([best_v, s], 1)
                ix = torch.cat([best_i, cols], 1)
                order = torch.sort(-v, dim=1, stable=True).indices[:, :k]
                best_v, best_i = torch.gather(v, 1, order), torch.gather(ix, 1, order)
            vals[i0:i1] = best_v.numpy()
            idxs[i0:i1] = best_i.numpy()
        return vals, idxs


SSIM_CANDIDATES = 32  # ssim-max prefilter: exact SSIM on the union of 32 candidates per query from each proxy (≤ 64)
SSIM_PROXY_SIZE = 32  # px: the local mean and variance maps of the uncorrelated-SSIM proxy, pooled to 32×32


def uncorrelated_ssim_maps(images: np.ndarray, size: int = SSIM_PROXY_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Each image's SSIM local means and variances (``ssim_candidates``' filter, valid region), pooled to
    size×size (OpenCV area interpolation): the per-image half of ``uncorrelated_ssim``. N×size² each."""
    from fprt.runtime.evidence.geometry import _moments, resize_stack

    mu, var = _moments(np.asarray(images, np.float32))
    return (resize_stack(mu, size).reshape(len(mu), -1), resize_stack(var, size).reshape(len(var), -1))


def uncorrelated_ssim_topk(queries, database, c: int, *, exclude_self: bool = False, block: int = 1 << 18) -> np.ndarray:
    """Indices (M×c) of each query's c best database images by SSIM without its covariance term,
    mean over the pooled maps of (2μxμy + C1)/(μx² + μy² + C1) · C2/(σx² + σy² + C2).

    Between images that hold no copy of each other the covariance is near zero, so their SSIM is set by
    what this keeps: how well the local brightness agrees (the body outline, the air) and how noisy each
    image is. Raw-pixel NCC ranks copies; this ranks the rest. ``queries``/``database``: the pairs of
    ``uncorrelated_ssim_maps``. Computed over blocks of queries (``block`` values at a time), never the
    whole M×N matrix; ties → lower index."""
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    qm, qv = (np.asarray(x, np.float32) for x in queries)
    dm, dv = (np.asarray(x, np.float32) for x in database)
    n, p = dm.shape
    out = np.empty((len(qm), c), np.int64)
    dm2 = dm * dm + np.float32(c1)
    step = max(1, block // max(1, n * p))
    for i0 in range(0, len(qm), step):
        mx, vx = qm[i0 : i0 + step, None], qv[i0 : i0 + step, None]
        lum = (2 * mx) * dm[None]
        lum += np.float32(c1)
        lum /= dm2[None] + mx * mx
        lum /= dv[None] + (vx + np.float32(c2))
        s = lum.mean(2, dtype=np.float64) * c2
        if exclude_self:
            s[np.arange(len(s)), np.arange(i0, i0 + len(s))] = -np.inf
        out[i0 : i0 + len(s)] = np.argsort(-s, axis=1, kind="stable")[:, :c]
    return out


def ssim_topk_prefiltered(queries: np.ndarray, database: np.ndarray, k: int, *, candidates: int = SSIM_CANDIDATES,
                          exclude_self: bool = False):
    """``SsimIndex.topk`` on candidates: exact SSIM only on the union of each query's ``candidates``
    nearest database images by raw-pixel NCC at 32×32 (``fprt.runtime.similarity`` top-k: copies) and its
    ``candidates`` best by ``uncorrelated_ssim_topk`` (the rest), never all pairs. Same return shapes;
    the values are the exact SSIM of the pairs kept; the maximum is missed only when neither proxy ranks
    the most similar image among its candidates (recall measured in benchmarks/bench_evidence_membership.py)."""
    from fprt.runtime.evidence.geometry import ssim_candidates
    from fprt.runtime.evidence.membership import pixel_vectors
    from fprt.runtime.methods.reductions import row_union, search

    n = len(database)
    k = min(k, n - 1 if exclude_self else n)
    c = max(k, min(candidates, n - 1 if exclude_self else n))
    queries = np.asarray(queries, np.float32)
    database = queries if exclude_self else np.asarray(database, np.float32)
    pq = pixel_vectors(queries)
    pd = pq if exclude_self else pixel_vectors(database)
    by_ncc = search(pq, pd, metric="cosine", k=c, exclude_self=exclude_self).row_indices
    mq = uncorrelated_ssim_maps(queries)
    md = mq if exclude_self else uncorrelated_ssim_maps(database)
    cand = row_union(by_ncc, uncorrelated_ssim_topk(mq, md, c, exclude_self=exclude_self), ascending=True)
    s = ssim_candidates(queries, database, cand)
    order = np.argsort(-s, axis=1, kind="stable")
    idx = np.take_along_axis(cand, order, 1)[:, :k]
    return np.take_along_axis(s, order, 1)[:, :k], idx


def ssim_pair(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two images, written out per formula (float64): the oracle the tests hold SsimIndex to."""
    from scipy.ndimage import correlate1d

    g = gaussian_window()
    half = SSIM_WIN // 2

    def filt(x):
        y = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return y[half : x.shape[0] - half, half : x.shape[1] - half]

    a = a.astype(np.float64)
    b = b.astype(np.float64)
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def phash_bits(image: np.ndarray, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """imagehash.phash of one H×W uint8 image as a bool array of hash_size² bits."""
    from PIL import Image
    from scipy.fftpack import dct

    n = hash_size * highfreq_factor
    small = np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((n, n), Image.Resampling.LANCZOS), dtype=np.float64)
    coeffs = dct(dct(small, axis=0), axis=1)
    low = coeffs[:hash_size, :hash_size]
    return (low > np.median(low)).reshape(-1)


def hamming_from_ip(ip, bits: int = PHASH_BITS):
    """Hamming distance of ±1 hash vectors from their inner product."""
    return (bits - np.asarray(ip, dtype=np.float64)) / 2


class _Features:
    """A stand-in for a model backend: fixed features of the pixels, same interface as Backend."""

    format = "classical"
    device = "cpu"
    threads = 1
    cacheable = True
    name = "?"
    output = "features"

    def __init__(self, size: int, task: str = "membership") -> None:
        self.meta = ModelMeta(
            model=self.name, kind="embedding", task=task, preprocess=Preprocess(size=size),
            class_names=["not_used", "used"] if task == "membership" else [], metric=self.metric,
        )
        self.model_sha256 = hashlib.sha256(f"fprt-classical-{self.name}-v1-size{size}".encode()).hexdigest()
        self.image_outputs = (self.output,)
        self.kind = "embedding"

    def describe(self) -> dict[str, Any]:
        return {"format": "classical", "model": self.name, "model_sha256": self.model_sha256, "device": "cpu",
                "size": self.meta.preprocess.size}

    def close(self) -> None:
        pass


class PhashFeatures(_Features):
    name = "phash"
    metric = "ip"
    output = "phash"

    def infer(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        bits = np.stack([phash_bits(p) for p in pixels])
        return {"phash": np.where(bits, 1.0, -1.0).astype(np.float32)}


class SsimFeatures(_Features):
    name = "ssim"
    metric = "ip"  # unused: SSIM has its own reduction (SsimIndex)
    output = "pixels"
    cacheable = False  # raw pixels: cheaper to decode again than to store

    def infer(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        return {"pixels": np.asarray(pixels, dtype=np.uint8)}
