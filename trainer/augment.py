"""Random copy-like transforms for self-pairs: an image and the kinds of trace a generator leaves of it.

A generator that memorised a training image does not return its pixels: it re-draws the noise (a
near-copy), moves it — shift, a small turn, a few per cent of rescale and a smooth warp of a few
pixels (a moved copy) —, re-renders it in its own version of the protocol — window level and width,
gamma, a smoother kernel (a restyled copy) —, or glues half of it to half of a similar image (a
blend) (the 2023 overview; ``fprt.demo.plan`` draws the same kinds). ``copy_transform`` makes such a
copy of every image of a batch in one resampling: an affine grid (``torch.nn.functional.affine_grid``)
plus a smooth displacement field — coarse random offsets upsampled bicubically, the construction of
torchvision's ``ElasticTransform`` —, then a Gaussian blur (one sigma per image, one grouped convolution),
gamma, window level/width and fresh noise. ``half_blend`` glues a side of each image
to the other side of a partner. The ranges are those of the traces, not of generic augmentation: a
copy turned by 12° is no longer a copy, and invariance to it costs the detail that tells two similar
slices apart. Everything is drawn from the ``torch.Generator`` given, so training stays deterministic.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def _uniform(generator: torch.Generator, lo: float, hi: float, n: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _sampling_grid(shape, generator: torch.Generator, rotate: float, shift: float, scale: float, warp: float):
    """N×H×W×2 sampling grid: a rotation (±``rotate``°), rescale (×e^±``scale``), shift (±``shift`` of the
    side) and a smooth warp (coarse 5×5 offsets of sd ``warp`` of the side, upsampled bicubically)."""
    n, _, h, w = shape
    angle = _uniform(generator, -rotate, rotate, n) * math.pi / 180
    s = torch.exp(_uniform(generator, -scale, scale, n))
    tx, ty = _uniform(generator, -shift, shift, n) * 2, _uniform(generator, -shift, shift, n) * 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    if warp:
        coarse = torch.randn((n, 2, 5, 5), generator=generator) * (2 * warp)  # grid units: the side is 2
        grid = grid + F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    return grid


def _blur(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Each image of N×1×H×W ``x`` blurred with its own Gaussian ``sigmas[i]`` (px): one grouped, separable
    5-tap convolution (``torchvision``'s ``gaussian_blur`` takes one sigma a call), edges reflected."""
    n, _, h, w = x.shape
    taps = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-0.5 * (taps[None, :] / sigmas[:, None].clamp_min(1e-3)) ** 2)
    k = (k / k.sum(1, keepdim=True)).to(x.device)
    y = F.pad(x.reshape(1, n, h, w), (2, 2, 2, 2), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=n)
    y = F.conv2d(y, k[:, None, :, None], groups=n)
    return y.reshape(n, 1, h, w)


def copy_transform(
    pixels: torch.Tensor,
    generator: torch.Generator,
    *,
    rotate: float = 3.0,
    shift: float = 0.03,
    scale: float = 0.04,
    warp: float = 0.02,
    blur: float = 0.8,
    gamma: float = 0.08,
    contrast: float = 0.08,
    level: float = 0.06,
    noise: float = 0.02,
) -> torch.Tensor:
    """N×1×H×W pixels (uint8 or float in [0, 255]) → float32 trace-like copies in [0, 255].

    ``rotate`` degrees, ``shift`` and ``warp`` in fractions of the side, ``scale`` log-scale, ``blur`` the
    largest Gaussian sigma (px), ``gamma`` and ``contrast`` log-factors, ``level`` the shift of the
    window level (fraction of the gray range), ``noise`` the largest sd of fresh Gaussian noise. Each
    is drawn per image, uniformly up to its bound; all zero returns the image."""
    x = pixels.to(torch.float32).cpu() / 255.0
    n = x.shape[0]
    if rotate or shift or scale or warp:
        grid = _sampling_grid(x.shape, generator, rotate, shift, scale, warp)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if blur:
        x = _blur(x, _uniform(generator, 0.01, blur, n))
    g = torch.exp(_uniform(generator, -gamma, gamma, n)).view(n, 1, 1, 1)
    c = torch.exp(_uniform(generator, -contrast, contrast, n)).view(n, 1, 1, 1)
    b = _uniform(generator, -level, level, n).view(n, 1, 1, 1)
    x = (x.clamp(0, 1) ** g - 0.5) * c + 0.5 + b
    if noise:
        x = x + _uniform(generator, 0.0, noise, n).view(n, 1, 1, 1) * torch.randn(x.shape, generator=generator)
    return (x.clamp(0, 1) * 255.0).to(pixels.device)


def half_blend(
    pixels: torch.Tensor,
    partners: torch.Tensor,
    generator: torch.Generator,
    *,
    probability: float = 0.3,
    seam_jitter: float = 0.1,
    seam_width: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(blended, which)``: with ``probability`` per image, the left or right part of ``pixels[i]`` next
    to the other part of ``partners[i]`` (a vertical seam within ±``seam_jitter`` of the side around the
    middle, softened over up to ``seam_width`` of the side, as a generator's blend of two memorised
    slices); ``which`` (N bool) marks the blended images. Float32 in the pixels' range."""
    x, y = pixels.to(torch.float32), partners.to(torch.float32)
    n, w = x.shape[0], x.shape[-1]
    which = torch.rand(n, generator=generator) < probability
    split = w / 2 + _uniform(generator, -seam_jitter, seam_jitter, n) * w
    width = 2 + _uniform(generator, 0.0, seam_width, n) * w
    flip = torch.rand(n, generator=generator) < 0.5
    t = torch.arange(w, dtype=torch.float32)
    m = ((t[None, :] - split[:, None]) / width[:, None] + 0.5).clamp(0, 1)  # 0: own pixels, 1: the partner's
    m = torch.where(flip[:, None], 1 - m, m) * which[:, None]
    m = m.to(x.device)[:, None, None, :]
    return x + m * (y - x), which
