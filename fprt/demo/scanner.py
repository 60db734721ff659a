"""The scanner side of a synthetic slice: noise, reconstruction kernel, field of view and display window.

``acquire(hu, scanner, rng)`` turns a noise-free HU image (``phantom.render``) into the display image
a PNG export holds: quantum noise (white plus a coarse "blotchy" component, stronger inside the
body), a separable 3-tap reconstruction kernel (positive = smooth, negative = sharp; it shapes the
noise spectrum and the edges at once), the reconstruction circle, and the window / gamma that map HU
to 8 bits. Everything here is vectorised and float32; the gamma is applied through a lookup table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

import numpy as np

from .phantom import SIZE, smooth_field

_F = np.float32
_FINE = 4096  # the window maps HU onto 0..FINE-1 before the 8-bit lookup table


@dataclass(frozen=True)
class Scanner:
    """One acquisition/export protocol. HU window [level − width/2, level + width/2] → [0, 255]."""

    level: float = -575.0
    width: float = 1500.0
    noise: float = 22.0  # HU std of the white noise before the kernel
    coarse: float = 0.3  # std of the coarse noise relative to ``noise``
    coarse_cells: int = 48  # grain of the coarse noise (cells across the image)
    body_noise: float = 0.4  # extra relative noise inside the body (photon starvation)
    kernel: float = 0.0  # 3-tap kernel [k, 1-2k, k] per axis: >0 smooth, <0 sharp
    fov: float = 0.0  # radius (px) of the reconstruction circle; 0 = none
    fov_fill: float = 0.0  # display value outside the circle
    gamma: float = 1.0  # display curve: out = 255·(in/255)^gamma
    offset: float = 0.0  # display offset added after the curve (8-bit units)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Scanner":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def jitter(self, rng: np.random.Generator, scale: float = 1.0) -> "Scanner":
        """The same protocol on another day: small per-image variation of dose, window and kernel."""
        return replace(
            self,
            level=self.level + rng.normal(0, 20 * scale),
            width=self.width * math.exp(rng.normal(0, 0.05 * scale)),
            noise=self.noise * math.exp(rng.normal(0, 0.2 * scale)),
            kernel=self.kernel + rng.normal(0, 0.03 * scale),
            gamma=self.gamma * math.exp(rng.normal(0, 0.03 * scale)),
            offset=self.offset + rng.normal(0, 1.5 * scale),
        )


@lru_cache(maxsize=64)
def _lut(gamma: float, offset: float) -> np.ndarray:
    x = (np.arange(_FINE, dtype=np.float64) + 0.5) / _FINE
    y = 255.0 * x ** float(gamma) + float(offset)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


@lru_cache(maxsize=16)
def _outside(radius: float, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    return ((yy - c) ** 2 + (xx - c) ** 2) > radius * radius


def kernel3(x: np.ndarray, k: float) -> np.ndarray:
    """Separable [k, 1-2k, k] filter (edge pixels keep the 1-D result of the other axis)."""
    if k == 0.0:
        return x
    k = _F(k)
    y = x.copy()
    y[:, 1:-1] += k * (x[:, :-2] + x[:, 2:] - _F(2) * x[:, 1:-1])
    z = y.copy()
    z[1:-1] += k * (y[:-2] + y[2:] - _F(2) * y[1:-1])
    return z


def noise_field(rng: np.random.Generator, sc: Scanner, body: np.ndarray | None = None) -> np.ndarray:
    """CT-like noise in HU (before the kernel): unit-variance uniform white noise plus a coarse component."""
    n = rng.random((SIZE, SIZE), dtype=_F)
    n -= _F(0.5)
    n *= _F(math.sqrt(12.0) * sc.noise)
    if sc.coarse > 0:
        n += smooth_field(rng, (SIZE, SIZE), int(sc.coarse_cells)) * _F(sc.coarse * sc.noise)
    if body is not None and sc.body_noise:
        n *= _F(1.0) + body * _F(sc.body_noise)
    return n


def to_display(x: np.ndarray, sc: Scanner) -> np.ndarray:
    """HU → float display units 0..255 (window only; see ``quantize`` for gamma and 8 bits)."""
    lo = sc.level - sc.width / 2.0
    d = (x - _F(lo)) * _F(255.0 / sc.width)
    return d


def quantize(d: np.ndarray, sc: Scanner) -> np.ndarray:
    """Display float (0..255) → uint8 through the protocol's gamma/offset curve and its FOV circle."""
    idx = d * _F(_FINE / 255.0)
    np.clip(idx, _F(0), _F(_FINE - 1), out=idx)
    out = _lut(round(float(sc.gamma), 4), round(float(sc.offset), 2))[idx.astype(np.int32)]
    if sc.fov > 0:
        n = out.shape[0]
        out[_outside(round(float(sc.fov) * n / SIZE, 1), n)] = np.uint8(round(min(255, max(0, sc.fov_fill))))
    return out


def acquire(hu: np.ndarray, sc: Scanner, rng: np.random.Generator) -> np.ndarray:
    """Noise-free HU image → display float image (0..255, before gamma and quantisation)."""
    body = (hu > _F(-500.0)).astype(_F) if sc.body_noise else None
    x = hu + noise_field(rng, sc, body)
    x = kernel3(x, sc.kernel)
    return to_display(x, sc)
