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


def patch_ncc(real: np.ndarray, generated: np.ndarray, *, patch: int = PATCH, search: int = SEARCH) -> float:
    """Mean over the real image's structured patches of the best NCC within ±``search`` px in ``generated``.

    Both images are 2-D float32 of the same shape (``verification_images``). Returns a value in [-1, 1]; 0.0 when no patch holds
    structure."""
    import cv2

    h, w = real.shape
    best = []
    for y in range(0, h - patch + 1, patch):
        for x in range(0, w - patch + 1, patch):
            tpl = real[y : y + patch, x : x + patch]
            if float(tpl.std()) < MIN_PATCH_STD:
                continue
            y0, y1 = max(0, y - search), min(h, y + patch + search)
            x0, x1 = max(0, x - search), min(w, x + patch + search)
            win = generated[y0:y1, x0:x1]
            res = cv2.matchTemplate(win, tpl, cv2.TM_CCOEFF_NORMED)
            best.append(float(np.nan_to_num(res, nan=0.0, posinf=0.0, neginf=0.0).max()))
    return float(np.mean(best)) if best else 0.0


def verify_candidates(real: np.ndarray, database: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``patch_ncc`` of each real image with its candidate database images.

    real: M×S×S float32, database: N×S×S float32, candidates: M×c int (−1 = no candidate).
    Returns M×c float64 (−inf where there is no candidate)."""
    out = np.full(candidates.shape, -np.inf)
    for i, row in enumerate(np.asarray(candidates)):
        for j, c in enumerate(row):
            if c >= 0:
                out[i, j] = patch_ncc(real[i], database[c])
    return out


def ssim_of_pairs(a: np.ndarray, b: np.ndarray, *, block: int = 256) -> np.ndarray:
    """SSIM of image pairs (a[i], b[i]) with the formula and constants of ``fprt.runtime.methods.classical``
    (11×11 Gaussian window, mean over the valid region), vectorised in torch: P×S×S each → P floats."""
    import torch

    from fprt.runtime.methods.classical import SSIM_K1, SSIM_K2, SSIM_L, _filter, gaussian_window

    g = torch.from_numpy(gaussian_window()).to(torch.float32)
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    out = np.empty(len(a))
    for i0 in range(0, len(a), block):
        x = torch.from_numpy(np.asarray(a[i0 : i0 + block], np.float32))
        y = torch.from_numpy(np.asarray(b[i0 : i0 + block], np.float32))
        mx, my = _filter(x, g), _filter(y, g)
        vx, vy = _filter(x * x, g) - mx * mx, _filter(y * y, g) - my * my
        cov = _filter(x * y, g) - mx * my
        m = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out[i0 : i0 + len(x)] = m.mean(dim=(1, 2), dtype=torch.float64).numpy()
    return out


def ssim_candidates(real: np.ndarray, database: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """SSIM of each real image with its candidates: M×c float64 (−inf where there is no candidate)."""
    cand = np.asarray(candidates)
    ii, jj = np.nonzero(cand >= 0)
    out = np.full(cand.shape, -np.inf)
    if len(ii):
        out[ii, jj] = ssim_of_pairs(real[ii], database[cand[ii, jj]])
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
