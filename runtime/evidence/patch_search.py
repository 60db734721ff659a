"""Patch-wise normalised cross-correlation with a local search, for many image pairs in one call.

For a pair (real image, database image) and each tile of the real image (``patch``×``patch``, the
image cut into a grid), the best NCC with the means removed (OpenCV's ``TM_CCOEFF_NORMED``,
scikit-image's ``match_template``) of the tile against the database image's windows within
±``search`` px of the tile's own place, windows that leave the image excluded.

What is done once per image and what once per pair:

- per real image (``TileSet``): the tiles, each made zero-mean, its norm, and whether it holds
  structure (standard deviation ≥ ``MIN_PATCH_STD``; flatter tiles, e.g. air, are skipped);
- per pair, in batches of pairs: the cross term of every structured tile with its search region as
  one depthwise ``torch.nn.functional.conv2d`` (a tile is zero-mean, so the cross term is the numerator of
  the NCC), and each window's sum and sum of squares from cumulative sums of the region (float64).

The numerator and the window statistics of a pair do not depend on the other pairs of its batch, so
the numbers are the same for every batch size and thread count.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from fprt.runtime.evidence.parallel import in_chunks, per_image

MIN_PATCH_STD = 0.5  # 8-bit units of the band-passed image: flatter tiles carry no evidence, skipped
PAIR_BATCH = 128  # pairs per conv2d call


def _torch():
    import torch

    return torch


@dataclass(frozen=True)
class TileSet:
    """The tiles of N images (N×T×patch×patch, T = (S // patch)², row-major), each prepared once."""

    templates: "torch.Tensor"  # noqa: F821 - N×T×p×p float32, each tile minus its mean
    norms: np.ndarray  # N×T float32: each zero-mean tile's Euclidean norm
    structured: np.ndarray  # N×T bool: tile standard deviation ≥ MIN_PATCH_STD
    patch: int
    size: int  # S: the images' side

    @property
    def origins(self) -> np.ndarray:
        """T×2 (y, x) of each tile's top-left corner."""
        k = self.size // self.patch
        yy, xx = np.divmod(np.arange(k * k), k)
        return np.stack([yy, xx], 1) * self.patch


def tile_set(images: np.ndarray, patch: int) -> TileSet:
    """``TileSet`` of N×S×S float32 images cut into ``patch``×``patch`` tiles."""
    torch = _torch()
    images = np.asarray(images, np.float32)
    n, s = len(images), images.shape[1]
    k = s // patch
    centred = np.empty((n, k * k, patch, patch), np.float32)
    norms = np.empty((n, k * k), np.float32)
    structured = np.empty((n, k * k), bool)

    def run(start: int, stop: int) -> None:
        x = images[start:stop, : k * patch, : k * patch].reshape(-1, k, patch, k, patch).transpose(0, 1, 3, 2, 4)
        tiles = x.reshape(-1, k * k, patch, patch)
        centred[start:stop] = tiles - tiles.mean(axis=(2, 3), keepdims=True)
        norms[start:stop] = np.sqrt((centred[start:stop].astype(np.float64) ** 2).sum(axis=(2, 3)))
        structured[start:stop] = tiles.std(axis=(2, 3)) >= MIN_PATCH_STD

    in_chunks(run, n)
    return TileSet(torch.from_numpy(centred), norms, structured, patch, s)


def _regions(images: np.ndarray, pair: np.ndarray, tile: np.ndarray, patch: int, search: int) -> "torch.Tensor":  # noqa: F821
    """Q×L×L float32 (L = patch + 2·search): the search region of tile ``tile[q]`` in image ``pair[q]`` of
    the K×S×S ``images``, zero outside the image (one gather from a strided view of the padded images)."""
    torch = _torch()
    k, s = len(images), images.shape[1]
    padded = np.zeros((k, s + 2 * search, s + 2 * search), np.float32)
    padded[:, search : search + s, search : search + s] = images
    side = patch + 2 * search
    view = np.lib.stride_tricks.sliding_window_view(padded, (side, side), axis=(1, 2))[:, ::patch, ::patch]
    ty, tx = np.divmod(tile, view.shape[2])
    return torch.from_numpy(np.ascontiguousarray(view[pair, ty, tx]))


@dataclass(frozen=True)
class SearchSpace:
    """N database images prepared once for searches of ``patch`` tiles within ±``search`` px: each
    window's spread (the square root of its sum of squared deviations from its mean, the NCC's
    denominator on the database side) at every tile and offset, from integral images (float64)."""

    images: np.ndarray  # N×S×S float32
    spread: np.ndarray  # N×T×(2s+1)² float32, NaN where the window leaves the image
    patch: int
    search: int


def search_space(images: np.ndarray, patch: int, search: int) -> SearchSpace:
    """``SearchSpace`` of N×S×S images."""
    images = np.asarray(images, np.float32)
    n, s = len(images), images.shape[1]
    k = s // patch
    d = np.arange(-search, search + 1)
    origin = np.arange(k) * patch
    at = np.clip(origin[:, None] + d[None], 0, s - patch)  # k×(2s+1) window corners per tile row / column
    ys = np.repeat(at, k, axis=0)[:, :, None]  # T×(2s+1)×1 (row-major tiles)
    xs = np.tile(at, (k, 1))[:, None, :]  # T×1×(2s+1)
    spread = np.empty((n, k * k, len(d) ** 2), np.float32)
    corners = _corners(ys, xs, patch, s + 1)

    def one(im: np.ndarray) -> np.ndarray:
        s1, s2 = _window_sums(im, corners)
        return np.sqrt(np.clip(s2 - s1 * s1 / (patch * patch), 0.0, None)).reshape(k * k, -1)

    per_image(one, images, spread)
    valid = _valid(k, patch, s, search).reshape(k * k, -1)
    spread[:, ~valid] = np.nan
    return SearchSpace(images, spread, patch, search)


def _corners(ys: np.ndarray, xs: np.ndarray, patch: int, width: int) -> tuple[np.ndarray, ...]:
    """Flat indices into a ``width``-wide integral image of the four corners of the patch×patch windows
    whose top-left corners are (ys, xs) (broadcast): bottom-right, top-right, bottom-left, top-left."""
    ys, xs = np.broadcast_arrays(ys, xs)
    return tuple((y * width + x).ravel() for y, x in
                 ((ys + patch, xs + patch), (ys, xs + patch), (ys + patch, xs), (ys, xs)))


def _window_sums(image: np.ndarray, corners: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """S×S float32 → the sums and the sums of squares (float64) over the windows ``corners`` names
    (``_corners``), from OpenCV's integral images: only the windows a search reads."""
    import cv2

    c1, c2 = cv2.integral2(image, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)

    def box(c):
        c = c.ravel()
        return c[corners[0]] - c[corners[1]] - c[corners[2]] + c[corners[3]]

    return box(c1), box(c2)


def _valid(k: int, patch: int, size: int, search: int) -> np.ndarray:
    """T×(2s+1)×(2s+1) bool: the window of each tile at each offset lies inside the image."""
    d = np.arange(-search, search + 1)
    pos = (np.arange(k) * patch)[:, None] + d[None]
    ok = (pos >= 0) & (pos + patch <= size)
    return (np.repeat(ok, k, axis=0)[:, :, None] & np.tile(ok, (k, 1))[:, None, :])


@contextlib.contextmanager
def one_thread():
    """torch on one intra-op thread inside the block (torch's setting is given back after it)."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def search_pairs(tiles: TileSet, rows: np.ndarray, space: SearchSpace, cols: np.ndarray):
    """Best NCC of each structured tile of ``tiles[rows[k]]`` within ±``space.search`` px in image
    ``cols[k]`` of ``space``.

    Returns (best K×T float64, NaN for tiles without structure; at K×T×2 int (y, x) top-left corner of
    the best window in the database image). The batches of pairs run on a pool of threads, one per CPU
    (``parallel.in_chunks``), each batch's torch ops on one thread (``one_thread``): torch's own
    thread pool spins, which made the searches 2× slower on a busy 2-CPU machine; each batch writes only
    its own rows, so the numbers do not depend on the number of threads."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    best = np.full((len(rows), tiles.templates.shape[1]), np.nan)
    at = np.zeros((*best.shape, 2), np.int64)
    starts = range(0, len(rows), PAIR_BATCH)

    def run(b0: int, b1: int) -> None:
        for k0 in starts[b0:b1]:
            _search_batch(tiles, rows, space, cols, k0, best, at)

    with one_thread():
        in_chunks(run, len(starts), min_chunk=1)
    return best, at


def _search_batch(tiles: TileSet, rows, space: SearchSpace, cols, k0: int, best: np.ndarray, at: np.ndarray) -> None:
    """``search_pairs`` for the pairs k0 … k0 + PAIR_BATCH − 1, written into ``best`` and ``at``."""
    torch = _torch()
    search, patch = space.search, tiles.patch
    side = 2 * search + 1
    r, c = rows[k0 : k0 + PAIR_BATCH], cols[k0 : k0 + PAIR_BATCH]
    pair, tile = np.nonzero(tiles.structured[r])
    if not len(pair):
        return
    regions = _regions(space.images[c], pair, tile, patch, search)
    num = torch.nn.functional.conv2d(regions[None], tiles.templates[r[pair], tile][:, None], groups=len(pair))[0]
    ncc = num.reshape(len(pair), -1).numpy()
    den = space.spread[c[pair], tile] * tiles.norms[r[pair], tile][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ncc /= den
    ncc[den <= 1e-6] = 0.0  # a flat window
    np.clip(ncc, -1.0, 1.0, out=ncc)
    ncc[np.isnan(den)] = -np.inf  # the window leaves the image
    where = ncc.argmax(1)
    best[k0 + pair, tile] = ncc[np.arange(len(pair)), where]
    dy, dx = np.divmod(where, side)
    origin = tiles.origins[tile]
    at[k0 + pair, tile] = np.stack([origin[:, 0] + dy - search, origin[:, 1] + dx - search], 1)
