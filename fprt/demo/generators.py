"""Simulated generative models: how a "generator" turns anatomy into a synthetic slice.

A generator never copies pixels. It draws an anatomy (a new one from its cohort's distribution, or
for a memorised training image that image's own anatomy, or two of them blended), moves it
(shift, rotation, smooth elastic warp), re-acquires it in its own imperfect version of the
cohort's scanner style (noise re-drawn and usually a bit too smooth, window and gamma slightly off)
and leaves its own weak model artefact: a faint periodic pattern locked to the pixel grid (the
checkerboard of a transposed-convolution upsampler, a coarser upsampling grid, or a narrow spectral
bump) whose amplitude follows the local brightness.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache

import numpy as np
from PIL import Image

from .phantom import HU_AIR, SIZE, Anatomy, render, smooth_field
from .scanner import Scanner, acquire

_F = np.float32
ARTIFACT_KINDS = ("checkerboard", "grid4", "grating")


@dataclass(frozen=True)
class Geometry:
    """A rigid move plus a smooth warp, applied to the noise-free HU image."""

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0  # degrees, counter-clockwise on screen
    warp: float = 0.0  # amplitude (px) of the elastic warp
    warp_seed: int = 0
    scale: float = 1.0  # rescale about the centre (1.03: 3 % larger)

    def is_identity(self) -> bool:
        return self.dx == 0 and self.dy == 0 and self.angle == 0 and self.warp == 0 and self.scale == 1.0


@dataclass(frozen=True)
class Artifact:
    kind: str = "checkerboard"
    amplitude: float = 0.6  # 8-bit display units at mid-gray
    period: float = 2.0  # px (grating: wavelength)
    angle: float = 0.0  # grating orientation, radians
    phase_x: float = 0.0
    phase_y: float = 0.0


@dataclass(frozen=True)
class GeneratorStyle:
    """One simulated generator: its restyling of the cohort's scanner, its geometry and its artefact."""

    name: str
    noise_scale: float = 0.85  # generators under-produce noise
    kernel_shift: float = 0.03  # ... and smooth a little
    level_shift: float = 0.0
    width_scale: float = 1.0
    gamma: float = 1.0
    shift_sd: float = 3.0  # px
    angle_sd: float = 1.5  # degrees
    warp: float = 1.5  # px
    artifact: Artifact = field(default_factory=Artifact)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorStyle":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if isinstance(d.get("artifact"), dict):
            d["artifact"] = Artifact(**d["artifact"])
        return cls(**d)

    def restyle(self, sc: Scanner) -> Scanner:
        """The generator's version of a protocol."""
        return replace(
            sc,
            noise=sc.noise * self.noise_scale,
            kernel=sc.kernel + self.kernel_shift,
            level=sc.level + self.level_shift,
            width=sc.width * self.width_scale,
            gamma=sc.gamma * self.gamma,
        )

    def sample_geometry(self, rng: np.random.Generator) -> Geometry:
        return Geometry(
            dx=float(rng.normal(0, self.shift_sd)),
            dy=float(rng.normal(0, self.shift_sd)),
            angle=float(rng.normal(0, self.angle_sd)),
            warp=float(self.warp * rng.uniform(0.5, 1.5)),
            warp_seed=int(rng.integers(2**31)),
        )


def make_generator(name: str, rng: np.random.Generator, artifact_strength: float = 1.0) -> GeneratorStyle:
    """A random generator: its restyling biases and one artefact of a random kind."""
    kind = ARTIFACT_KINDS[int(rng.integers(len(ARTIFACT_KINDS)))]
    if kind == "checkerboard":
        art = Artifact(kind, 0.3, 2.0, 0.0, float(rng.integers(2)) * math.pi, float(rng.integers(2)) * math.pi)
    elif kind == "grid4":
        art = Artifact(kind, 0.9, 4.0, 0.0, float(rng.integers(4)) * math.pi / 2, float(rng.integers(4)) * math.pi / 2)
    else:
        art = Artifact(kind, 1.0, float(rng.uniform(2.5, 4.5)), float(rng.uniform(0, math.pi)),
                       float(rng.uniform(0, 2 * math.pi)), 0.0)
    art = replace(art, amplitude=art.amplitude * artifact_strength * float(rng.uniform(0.8, 1.25)))
    return GeneratorStyle(
        name=name,
        noise_scale=float(rng.uniform(0.72, 0.95)),
        kernel_shift=float(rng.uniform(0.0, 0.06)),
        level_shift=float(rng.normal(0, 10)),
        width_scale=float(math.exp(rng.normal(0, 0.025))),
        gamma=float(math.exp(rng.normal(0, 0.03))),
        artifact=art,
    )


@lru_cache(maxsize=32)
def artifact_pattern(art: Artifact) -> np.ndarray:
    """The artefact's zero-mean unit-amplitude pattern (SIZE×SIZE float32), cached per artefact."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    if art.kind in ("checkerboard", "grid4"):
        w = 2 * math.pi / art.period
        p = np.cos(w * x + art.phase_x) * np.cos(w * y + art.phase_y)
        if art.kind == "grid4":  # an upsampling grid: lines plus their crossings
            p = 0.5 * (np.cos(w * x + art.phase_x) + np.cos(w * y + art.phase_y)) + 0.5 * p
    elif art.kind == "grating":
        w = 2 * math.pi / art.period
        p = np.cos(w * (x * math.cos(art.angle) + y * math.sin(art.angle)) + art.phase_x)
    else:
        raise ValueError(f"unknown artefact kind {art.kind!r}; expected one of {ARTIFACT_KINDS}")
    p /= np.abs(p).max()
    return p.astype(_F)


def _mesh(geo: Geometry, cells: int = 4) -> list:
    """PIL MESH data: for each output cell the source quad (rotation and rescale about the centre, shift, warp)."""
    step = SIZE / cells
    c = (SIZE - 1) / 2.0
    a = math.radians(geo.angle)
    ca, sa = math.cos(a), math.sin(a)
    rng = np.random.default_rng(geo.warp_seed)
    wx = smooth_field(rng, (cells + 1, cells + 1), 3) * geo.warp if geo.warp else np.zeros((cells + 1, cells + 1))
    wy = smooth_field(rng, (cells + 1, cells + 1), 3) * geo.warp if geo.warp else np.zeros((cells + 1, cells + 1))

    def src(i: int, j: int) -> tuple[float, float]:  # output grid node (col i, row j) → source point
        x, y = (i * step - c - geo.dx) / geo.scale, (j * step - c - geo.dy) / geo.scale
        return (ca * x - sa * y + c + float(wx[j, i]), sa * x + ca * y + c + float(wy[j, i]))

    mesh = []
    for j in range(cells):
        for i in range(cells):
            box = (int(i * step), int(j * step), int((i + 1) * step), int((j + 1) * step))
            quad = (*src(i, j), *src(i, j + 1), *src(i + 1, j + 1), *src(i + 1, j))
            mesh.append((box, quad))
    return mesh


def apply_geometry(hu: np.ndarray, geo: Geometry) -> np.ndarray:
    """Move/warp a HU image (bilinear; outside filled with air)."""
    if geo.is_identity():
        return hu
    im = Image.fromarray(np.ascontiguousarray(hu, dtype=_F))  # mode "F"
    out = im.transform((SIZE, SIZE), Image.Transform.MESH, _mesh(geo), resample=Image.Resampling.BILINEAR,
                       fillcolor=HU_AIR)
    return np.asarray(out, dtype=_F).copy()


def blend(a: np.ndarray, b: np.ndarray, split: float, width: float, vertical: bool = True) -> np.ndarray:
    """Left part from ``a``, right part from ``b`` (top/bottom when not ``vertical``), soft seam at ``split`` px."""
    t = np.arange(SIZE, dtype=_F)
    m = np.clip((t - _F(split)) / _F(max(width, 1e-3)) + _F(0.5), _F(0), _F(1))
    m = m[None, :] if vertical else m[:, None]
    return a + m * (b - a)


def synthesize(
    sources: tuple[Anatomy, ...],
    geometries: tuple[Geometry, ...],
    scanner: Scanner,
    gen: GeneratorStyle,
    rng: np.random.Generator,
    blend_split: float = 128.0,
    blend_width: float = 12.0,
    blend_vertical: bool = True,
) -> np.ndarray:
    """One generated image: render each source, move it, blend (two sources), re-acquire, add the artefact.

    Returns the display float image (0..255, before the generator's gamma and quantisation).
    """
    hus = [apply_geometry(render(an), g) for an, g in zip(sources, geometries)]
    hu = hus[0] if len(hus) == 1 else blend(hus[0], hus[1], blend_split, blend_width, blend_vertical)
    sc = gen.restyle(scanner)
    d = acquire(hu, sc, rng)
    art = gen.artifact
    if art.amplitude:
        mod = np.clip(d * _F(1.0 / 255.0), _F(0), _F(1))  # the pattern rides on bright structures
        mod += _F(0.25)
        d += artifact_pattern(art) * mod * _F(art.amplitude)
    return d


__all__ = [
    "ARTIFACT_KINDS",
    "Artifact",
    "GeneratorStyle",
    "Geometry",
    "apply_geometry",
    "artifact_pattern",
    "blend",
    "make_generator",
    "synthesize",
]
