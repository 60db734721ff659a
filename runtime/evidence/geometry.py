"""Geometric verification: does a generated image hold a moved, turned, rescaled or warped copy of a real one?

Generators move, turn and rescale what they memorise and warp it smoothly by a few pixels, so one
whole-image alignment is not enough. ``patch_ncc`` compares the two images patch by patch: each 32×32
patch of the real image (at 128 px, band-passed: ``band_pass``) is searched for in the generated image within ±5 px of
its own place (normalised cross-correlation with the means removed, OpenCV's ``TM_CCOEFF_NORMED``, computed
for many pairs at once by ``patch_search``), and the score is
the mean over the patches that hold structure of each patch's best correlation. A rigid move, a turn of
a few degrees, a rescale of a few per cent and a smooth warp all move every patch by a few pixels, which
the local search absorbs; a different anatomy does not line up in every patch at once. The correlation
is invariant to each patch's brightness and contrast, so restyling (window, level, noise) does not hide
a copy either.

``align_for_display`` (the report's side-by-side view) warps the generated image onto the real one with
OpenCV's DIS optical flow and returns the difference image and the patch score.

Everything works on small candidate lists (each real image's top-k from the embedding and the raw pixels):
the pairs to verify are a few per real image, never all pairs. Per-image work (tiles, their norms, the
half-size images, the SSIM moments) is done once per image; only what needs both images is done per pair,
in batches.
"""

from __future__ import annotations

import numpy as np

from fprt.runtime.evidence.parallel import in_chunks, per_image
from fprt.runtime.evidence.patch_search import SearchSpace, TileSet, search_pairs, search_space, tile_set

VERIFY_SIZE = 128  # px: images are compared at this size
PATCH = 32  # px: patch side at VERIFY_SIZE
SEARCH = 5  # px: each patch is searched for within ±SEARCH px of its own place
BAND = (1.5, 6.0)  # px at VERIFY_SIZE: band-pass (difference of Gaussians) before the patch comparison


def resize_stack(images: np.ndarray, size: int = VERIFY_SIZE) -> np.ndarray:
    """N×H×W images → N×size×size float32 (OpenCV area interpolation: an average when shrinking)."""
    import cv2

    images = np.asarray(images)
    if images.ndim == 4:  # N×1×H×W (model input layout)
        images = images[:, 0]
    if images.shape[1:] == (size, size):
        return images.astype(np.float32, copy=False)
    return per_image(lambda im: cv2.resize(im.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA),
                     images, np.empty((len(images), size, size), np.float32))


def band_pass(images: np.ndarray, band: tuple[float, float] = BAND, *, out: np.ndarray | None = None,
              index: np.ndarray | None = None) -> np.ndarray:
    """Difference of two Gaussian blurs of each image (N×S×S float32): keeps the anatomy's fine structure
    (vessels, edges) and drops both the pixel noise a generator re-draws and the smooth shading a restyle
    changes; every scan's body outline looks alike at low frequencies, its vessels do not. ``out``: where to
    write them (made when None); ``index``: of ``images[index]`` only."""
    import cv2

    def one(im: np.ndarray) -> np.ndarray:
        im = np.asarray(im, np.float32)
        return cv2.GaussianBlur(im, (0, 0), band[0]) - cv2.GaussianBlur(im, (0, 0), band[1])

    n = len(images if index is None else index)
    return per_image(one, images, np.empty((n, *np.shape(images)[1:]), np.float32) if out is None else out, index=index)


def verification_images(images: np.ndarray) -> np.ndarray:
    """What ``patch_ncc`` compares: the images at 128 px, band-passed."""
    return band_pass(resize_stack(images, VERIFY_SIZE))


def _half(images: np.ndarray) -> np.ndarray:
    """Each image at half its side (OpenCV area interpolation): what ``coarse_alignment`` searches in."""
    return resize_stack(images, np.shape(images)[1] // 2)


def _mean_score(best: np.ndarray) -> np.ndarray:
    """Per pair: mean over the structured tiles (non-NaN) of their best NCC; 0.0 where none holds structure."""
    n = np.sum(~np.isnan(best), 1)
    return np.where(n > 0, np.nansum(best, 1) / np.maximum(n, 1), 0.0)


def _alignments(half_tiles: TileSet, rows, half_db: SearchSpace, cols) -> list:
    """Per pair: the similarity transform (2×3, database → real coordinates at full size) fitted robustly
    (OpenCV ``estimateAffinePartial2D``, RANSAC) to the tile matches at half size with a ±``search`` px
    reach (±2·search at full size), or None when fewer than 3 tiles hold structure or none fits."""
    import cv2

    best, at = search_pairs(half_tiles, rows, half_db, cols)
    centre = half_tiles.patch / 2
    src_all = (half_tiles.origins[:, ::-1] + centre).astype(np.float32)  # (x, y)
    out: list = [None] * len(rows)

    def fit(start: int, stop: int) -> None:
        for k in range(start, stop):
            ok = ~np.isnan(best[k])
            if ok.sum() >= 3:
                src = src_all[ok] * 2
                dst = (at[k, ok][:, ::-1] + centre).astype(np.float32) * 2
                out[k] = cv2.estimateAffinePartial2D(dst, src, method=cv2.RANSAC, ransacReprojThreshold=3.0)[0]

    in_chunks(fit, len(rows), min_chunk=256)
    return out


def _largest_moves(ms: list, shape: tuple[int, int]) -> np.ndarray:
    """How far (px) each 2×3 transform of ``ms`` moves the corners of an image of ``shape``, at most
    (−inf for None), all at once."""
    h, w = shape
    out = np.full(len(ms), -np.inf)
    fitted = [k for k, m in enumerate(ms) if m is not None]
    if fitted:
        m = np.stack([ms[k] for k in fitted]).astype(np.float64)  # K×2×3
        corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)  # (x, y)
        moved = corners[None] @ m[:, :, :2].transpose(0, 2, 1) + m[:, None, :, 2]  # K×4×2
        out[fitted] = np.abs(moved - corners[None]).max(axis=(1, 2))
    return out


MOSTLY_USED = 0.9  # share of a set's images named by pairs above which the set is kept whole (no copy)


def _pair_images(real: np.ndarray, database: np.ndarray, rows, cols):
    """The images the pairs (real[rows[k]], database[cols[k]]) name, as float32, with the pairs' indices
    into them: (real, database, rows, cols). Per-image work is then done once per image named, plus at
    most a tenth more when a set is kept whole rather than copied (``_named``)."""
    real, rows = _named(real, rows)
    database, cols = _named(database, cols)
    return real, database, rows, cols


def _named(images: np.ndarray, index) -> tuple[np.ndarray, np.ndarray]:
    """(images[used], index into them) for the images ``index`` names; the whole set, not a copy, when
    it names at least ``MOSTLY_USED`` of them."""
    images, index = np.asarray(images, np.float32), np.asarray(index, np.int64)
    used, inverse = np.unique(index, return_inverse=True)
    if len(used) >= MOSTLY_USED * len(images):
        return images, index
    return images[used], inverse


def verify_pairs(real: np.ndarray, database: np.ndarray, rows, cols, *, patch: int = PATCH, search: int = SEARCH,
                 align: bool = True) -> np.ndarray:
    """``patch_ncc`` of the pairs (real[rows[k]], database[cols[k]]) → K float64, batched.

    real: M×S×S float32, database: N×S×S float32 (``verification_images``). Each real image's tiles are
    prepared once (``patch_search.tile_set``); the searches of all pairs run batched."""
    import cv2

    if not len(rows):
        return np.zeros(0)
    real, database, rows, cols = _pair_images(real, database, rows, cols)
    tiles = tile_set(real, patch)
    score = _mean_score(search_pairs(tiles, rows, search_space(database, patch, search), cols)[0])
    if not align:
        return score
    ms = _alignments(tile_set(_half(real), patch // 2), rows, search_space(_half(database), patch // 2, search), cols)
    h, w = real.shape[1:]
    far = np.flatnonzero(_largest_moves(ms, (h, w)) > search / 2).tolist()
    if far:  # else the local search already covers the move
        moved = per_image(lambda k: cv2.warpAffine(database[cols[k]], ms[k], (w, h), flags=cv2.INTER_LINEAR,
                                                   borderMode=cv2.BORDER_REPLICATE), far,
                          np.empty((len(far), h, w), np.float32), min_chunk=128)
        best = search_pairs(tiles, rows[far], search_space(moved, patch, search), np.arange(len(far)))[0]
        has = ~np.all(np.isnan(best), 1)
        idx = np.asarray(far)[has]
        score[idx] = np.maximum(score[idx], _mean_score(best[has]))
    return score


def patch_ncc(real: np.ndarray, generated: np.ndarray, *, patch: int = PATCH, search: int = SEARCH,
              align: bool = True) -> float:
    """Mean over the real image's structured patches of the best NCC within ±``search`` px in ``generated``.

    Both images are 2-D float32 of the same shape (``verification_images``). With ``align`` the
    generated image is first brought onto the real one by a similarity transform fitted to the patch
    matches at half size (a move, turn or rescale larger than the local search), and the better of the
    aligned and the plain score is kept. Returns a value in [-1, 1]; 0.0 when no patch holds structure.
    One pair of ``verify_pairs``."""
    return float(verify_pairs(np.asarray(real)[None], np.asarray(generated)[None], [0], [0], patch=patch,
                              search=search, align=align)[0])


def verify_candidates(real: np.ndarray, database: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``patch_ncc`` of each real image with its candidate database images (``verify_pairs``, batched).

    real: M×S×S float32, database: N×S×S float32, candidates: M×c int (−1 = no candidate).
    Returns M×c float64 (−inf where there is no candidate)."""
    candidates = np.asarray(candidates)
    out = np.full(candidates.shape, -np.inf)
    i, j = np.nonzero(candidates >= 0)
    out[i, j] = verify_pairs(real, database, i, candidates[i, j])
    return out


def _ssim_filter(x: np.ndarray) -> np.ndarray:
    """The SSIM window (11×11 Gaussian, σ = 1.5) over the valid region of each of K images (K×H×W float32).

    The images are stacked into one tall image for one OpenCV call (separable filter): a valid pixel's
    window stays within its own image, so the stack changes nothing."""
    import cv2

    from fprt.runtime.methods.classical import SSIM_WIN, gaussian_window

    g = gaussian_window().astype(np.float32)
    h = SSIM_WIN // 2
    k, rows, width = x.shape
    tall = cv2.sepFilter2D(np.ascontiguousarray(x, np.float32).reshape(k * rows, width), cv2.CV_32F, g, g,
                           borderType=cv2.BORDER_CONSTANT)
    return tall.reshape(k, rows, width)[:, h:-h, h:-h]


def _moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's SSIM-window means and variances over the valid region (two K×h×w float32)."""
    h = _ssim_filter(images[:1]).shape[1:]
    mu, var = np.empty((2, len(images), *h), np.float32)

    def run(start: int, stop: int) -> None:
        x = images[start:stop]
        mu[start:stop] = _ssim_filter(x)
        var[start:stop] = _ssim_filter(x * x) - mu[start:stop] * mu[start:stop]

    in_chunks(run, len(images))
    return mu, var


SSIM_BATCH = 16  # pairs per filter call (their maps stay in the CPU's cache)


def ssim_candidates(real: np.ndarray, database: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """SSIM of each real image with its candidates: M×c float64 (−inf where there is no candidate).

    The formula and constants of ``fprt.runtime.methods.classical`` (mean of the map over the valid
    region); each image's local means and variances are filtered once, only the cross term per pair,
    in batches of pairs (``_ssim_of_pairs``), the batches side by side."""
    cand = np.asarray(candidates)
    out = np.full(cand.shape, -np.inf)
    i, j = np.nonzero(cand >= 0)
    if not len(i):
        return out
    real, database, rows, cols = _pair_images(real, database, i, cand[i, j])
    mr, vr = _moments(real)
    md, vd = _moments(database)
    values = np.empty(len(rows))

    def run(start: int, stop: int) -> None:
        for k0 in range(start, stop, SSIM_BATCH):
            r, d = rows[k0 : min(stop, k0 + SSIM_BATCH)], cols[k0 : min(stop, k0 + SSIM_BATCH)]
            values[k0 : k0 + len(r)] = _ssim_of_pairs(real[r], database[d], mr[r], vr[r], md[d], vd[d])

    in_chunks(run, len(rows), min_chunk=8 * SSIM_BATCH)
    out[i, j] = values
    return out


def _ssim_of_pairs(x: np.ndarray, y: np.ndarray, mx: np.ndarray, vx: np.ndarray, my: np.ndarray,
                   vy: np.ndarray) -> np.ndarray:
    """Mean SSIM of each pair (x[k], y[k]) from their window means and variances (fancy-indexed copies,
    used as scratch): only the cross term is filtered here."""
    from fprt.runtime.methods.classical import SSIM_K1, SSIM_K2, SSIM_L

    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    mxy = mx * my
    cov = _ssim_filter(x * y)
    cov -= mxy
    cov *= 2
    cov += c2  # 2·cov + C2
    mxy *= 2
    mxy += c1  # 2·μx·μy + C1
    mxy *= cov  # the numerator
    mx *= mx
    my *= my
    mx += my
    mx += c1  # μx² + μy² + C1
    vx += vy
    vx += c2
    mx *= vx  # the denominator
    mxy /= mx
    return mxy.mean(axis=(1, 2), dtype=np.float64)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def align_for_display(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(generated warped onto real, |real − warped|, patch score) — uint8 2-D arrays of the real image's shape.

    The warp is OpenCV's DIS optical flow from the real image to the generated one (medium preset),
    applied with ``remap``; the score is ``patch_ncc`` at 128 px of the two images as given (the
    evidence's own geometric score, not a score of the flow)."""
    import cv2

    real = np.asarray(real)
    generated = np.asarray(generated)
    if real.ndim != 2 or generated.ndim != 2:
        raise ValueError(f"align_for_display expects 2-D images, got shapes {real.shape} and {generated.shape}")
    h, w = real.shape
    r8 = _to_uint8(real)
    g8 = _to_uint8(cv2.resize(generated.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
                   if generated.shape != real.shape else generated)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(r8, g8, None)  # real(x) ≈ generated(x + flow(x))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(g8, gx + flow[..., 0], gy + flow[..., 1], interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    diff = cv2.absdiff(r8, warped)
    small = verification_images(np.stack([r8, g8]))
    return warped, diff, patch_ncc(small[0], small[1])
