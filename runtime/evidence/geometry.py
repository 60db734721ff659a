"""Geometric verification: does a generated image hold a moved, turned, rescaled or warped copy of a real one?

Generators move, turn and rescale what they memorise and warp it smoothly by a few pixels, so one
whole-image alignment is not enough. ``patch_ncc`` compares the two images patch by patch: each 32×32
patch of the real image (at 128 px, band-passed: ``band_pass``) is searched for in the generated image within ±5 px of its own
place (OpenCV ``matchTemplate``, normalised cross-correlation with the means removed), and the score is
the mean over the patches that hold structure of each patch's best correlation. A rigid move, a turn of
a few degrees, a rescale of a few per cent and a smooth warp all move every patch by a few pixels, which
the local search absorbs; a different anatomy does not line up in every patch at once. The correlation
is invariant to each patch's brightness and contrast, so restyling (window, level, noise) does not hide
a copy either.

``align_for_display`` (the report's side-by-side view) warps the generated image onto the real one with
OpenCV's DIS optical flow and returns the difference image and the patch score.

Everything works on small candidate lists (each real image's top-k from the embedding and the raw pixels):
the pairs to verify are a few per real image, never all pairs.
"""

from __future__ import annotations

import numpy as np

VERIFY_SIZE = 128  # px: images are compared at this size
PATCH = 32  # px: patch side at VERIFY_SIZE
SEARCH = 5  # px: each patch is searched for within ±SEARCH px of its own place
BAND = (1.5, 6.0)  # px at VERIFY_SIZE: band-pass (difference of Gaussians) before the patch comparison
MIN_PATCH_STD = 0.5  # 8-bit units of the band-passed image: flatter patches (air) carry no evidence, skipped


def resize_stack(images: np.ndarray, size: int = VERIFY_SIZE) -> np.ndarray:
    """N×H×W images → N×size×size float32 (OpenCV area interpolation: an average when shrinking)."""
    import cv2

    images = np.asarray(images)
    if images.ndim == 4:  # N×1×H×W (model input layout)
        images = images[:, 0]
    if images.shape[1:] == (size, size):
        return images.astype(np.float32, copy=False)
    out = np.empty((len(images), size, size), np.float32)
    for i, im in enumerate(images):
        out[i] = cv2.resize(im.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return out


def band_pass(images: np.ndarray, band: tuple[float, float] = BAND) -> np.ndarray:
    """Difference of two Gaussian blurs of each image (N×S×S float32): keeps the anatomy's fine structure
    (vessels, edges) and drops both the pixel noise a generator re-draws and the smooth shading a restyle
    changes; every scan's body outline looks alike at low frequencies, its vessels do not."""
    import cv2

    out = np.empty(np.shape(images), np.float32)
    for i, im in enumerate(images):
        im = np.asarray(im, np.float32)
        out[i] = cv2.GaussianBlur(im, (0, 0), band[0]) - cv2.GaussianBlur(im, (0, 0), band[1])
    return out


def verification_images(images: np.ndarray) -> np.ndarray:
    """What ``patch_ncc`` compares: the images at 128 px, band-passed."""
    return band_pass(resize_stack(images, VERIFY_SIZE))


def patch_matches(real: np.ndarray, generated: np.ndarray, *, patch: int = PATCH, search: int = SEARCH):
    """For each structured patch of ``real``: (its centre, the centre of its best match in ``generated``
    within ±``search`` px, that match's NCC) as three arrays (P×2, P×2, P)."""
    import cv2

    h, w = real.shape
    src, dst, best = [], [], []
    for y in range(0, h - patch + 1, patch):
        for x in range(0, w - patch + 1, patch):
            tpl = real[y : y + patch, x : x + patch]
            if float(tpl.std()) < MIN_PATCH_STD:
                continue
            y0, y1 = max(0, y - search), min(h, y + patch + search)
            x0, x1 = max(0, x - search), min(w, x + patch + search)
            res = cv2.matchTemplate(generated[y0:y1, x0:x1], tpl, cv2.TM_CCOEFF_NORMED)
            _, peak, _, at = cv2.minMaxLoc(res)
            src.append((x + patch / 2, y + patch / 2))
            dst.append((x0 + at[0] + patch / 2, y0 + at[1] + patch / 2))
            best.append(peak if np.isfinite(peak) else 0.0)
    return np.asarray(src, np.float32), np.asarray(dst, np.float32), np.asarray(best, np.float64)


def coarse_alignment(real: np.ndarray, generated: np.ndarray) -> np.ndarray | None:
    """A similarity transform (2×3, generated → real coordinates) from patch matches at half size with a
    ±2·SEARCH px reach, fitted robustly (OpenCV ``estimateAffinePartial2D``, RANSAC); None if none fits."""
    import cv2

    h, w = real.shape
    half = (w // 2, h // 2)
    r2 = cv2.resize(real, half, interpolation=cv2.INTER_AREA)
    g2 = cv2.resize(generated, half, interpolation=cv2.INTER_AREA)
    src, dst, _ = patch_matches(r2, g2, patch=PATCH // 2, search=SEARCH)
    if len(src) < 3:
        return None
    m, _ = cv2.estimateAffinePartial2D(dst * 2, src * 2, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    return m


def _largest_move(m: np.ndarray, shape: tuple[int, int]) -> float:
    """How far (px) the 2×3 transform ``m`` moves the corners of an image of ``shape``, at most."""
    h, w = shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64)
    return float(np.abs(corners @ np.asarray(m, np.float64).T - corners[:, :2]).max())


def patch_ncc(real: np.ndarray, generated: np.ndarray, *, patch: int = PATCH, search: int = SEARCH,
              align: bool = True) -> float:
    """Mean over the real image's structured patches of the best NCC within ±``search`` px in ``generated``.

    Both images are 2-D float32 of the same shape (``verification_images``). With ``align`` the
    generated image is first brought onto the real one by ``coarse_alignment`` (a move, turn or rescale
    larger than the local search), and the better of the aligned and the plain score is kept. Returns a
    value in [-1, 1]; 0.0 when no patch holds structure."""
    import cv2

    plain = patch_matches(real, generated, patch=patch, search=search)[2]
    score = float(plain.mean()) if len(plain) else 0.0
    if align:
        m = coarse_alignment(real, generated)
        if m is not None and _largest_move(m, real.shape) > search / 2:  # else the local search already covers it
            h, w = real.shape
            moved = cv2.warpAffine(generated, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            aligned = patch_matches(real, moved, patch=patch, search=search)[2]
            if len(aligned):
                score = max(score, float(aligned.mean()))
    return score


def verify_candidates(real: np.ndarray, database: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``patch_ncc`` of each real image with its candidate database images.

    real: M×S×S float32, database: N×S×S float32, candidates: M×c int (−1 = no candidate).
    Returns M×c float64 (−inf where there is no candidate). Rows run on a thread pool (OpenCV releases
    the GIL), one worker per CPU."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    candidates = np.asarray(candidates)
    out = np.full(candidates.shape, -np.inf)

    def rows(i0: int, i1: int) -> None:
        for i in range(i0, i1):
            for j, c in enumerate(candidates[i]):
                if c >= 0:
                    out[i, j] = patch_ncc(real[i], database[c])

    workers = max(1, min(os.cpu_count() or 1, 16))
    step = max(1, -(-len(candidates) // (4 * workers)))
    if workers == 1 or len(candidates) <= step:
        rows(0, len(candidates))
        return out
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i0: rows(i0, min(i0 + step, len(candidates))), range(0, len(candidates), step)))
    return out


def _ssim_filter(x: np.ndarray) -> np.ndarray:
    """The SSIM window (11×11 Gaussian, σ = 1.5) over the valid region of one image (OpenCV, separable)."""
    import cv2

    from fprt.runtime.methods.classical import SSIM_WIN, gaussian_window

    g = gaussian_window().astype(np.float32)
    h = SSIM_WIN // 2
    return cv2.sepFilter2D(x, cv2.CV_32F, g, g, borderType=cv2.BORDER_CONSTANT)[h:-h, h:-h]


def _moments(images: np.ndarray, rows) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for i in rows:
        x = images[i]
        mu = _ssim_filter(x)
        out[int(i)] = (mu, _ssim_filter(x * x) - mu * mu)
    return out


def ssim_candidates(real: np.ndarray, database: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """SSIM of each real image with its candidates: M×c float64 (−inf where there is no candidate).

    The formula and constants of ``fprt.runtime.methods.classical`` (mean of the map over the valid
    region); each image's local means and variances are filtered once, only the cross term per pair."""
    from fprt.runtime.methods.classical import SSIM_K1, SSIM_K2, SSIM_L

    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    cand = np.asarray(candidates)
    real = np.asarray(real, np.float32)
    database = np.asarray(database, np.float32)
    out = np.full(cand.shape, -np.inf)
    mr = _moments(real, range(len(real)))
    md = _moments(database, np.unique(cand[cand >= 0]))
    for i, j in zip(*np.nonzero(cand >= 0)):
        (mx, vx), (my, vy) = mr[int(i)], md[int(cand[i, j])]
        cov = _ssim_filter(real[i] * database[cand[i, j]]) - mx * my
        m = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out[i, j] = float(m.mean(dtype=np.float64))
    return out


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
