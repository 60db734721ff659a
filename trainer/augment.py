"""Random copy-like transforms for self-pairs: an image and a moved, restyled copy of itself.

Traces of training images in generated ones are rarely pixel copies: they are shifted, rotated,
scaled, warped and restyled (the brief; the 2023 overview). ``copy_transform`` makes such copies of a
batch — a random affine warp (rotation, shift, scale), a contrast/brightness change, a mild gamma
and Gaussian noise — so a Siamese net can learn to match an image to its transformed copy
(positive) and not to other images (negatives). Everything is drawn from the ``torch.Generator``
given, so training stays deterministic.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def copy_transform(
    pixels: torch.Tensor,
    generator: torch.Generator,
    *,
    max_rotate: float = 12.0,
    max_shift: float = 0.08,
    scale: tuple[float, float] = (0.9, 1.1),
    contrast: float = 0.2,
    brightness: float = 0.08,
    gamma: float = 0.15,
    noise: float = 0.03,
) -> torch.Tensor:
    """N×1×H×W pixels (uint8 or float in [0, 255]) → float32 transformed copies in [0, 255]."""
    x = pixels.to(torch.float32) / 255.0
    n = x.shape[0]

    def uniform(lo, hi, shape=(n,)):
        return lo + (hi - lo) * torch.rand(shape, generator=generator)

    angle = uniform(-max_rotate, max_rotate) * math.pi / 180
    s = uniform(*scale)
    tx, ty = uniform(-max_shift, max_shift) * 2, uniform(-max_shift, max_shift) * 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    g = torch.exp(uniform(-gamma, gamma)).to(x.device).view(n, 1, 1, 1)
    x = x.clamp(0, 1) ** g
    c = (1 + uniform(-contrast, contrast)).to(x.device).view(n, 1, 1, 1)
    b = uniform(-brightness, brightness).to(x.device).view(n, 1, 1, 1)
    x = (x - 0.5) * c + 0.5 + b
    x = x + noise * torch.randn(x.shape, generator=generator).to(x.device)
    return (x.clamp(0, 1) * 255.0).to(torch.float32)
