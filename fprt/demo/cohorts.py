"""Cohorts: populations of patients scanned with one protocol.

A cohort is a distribution of ``Anatomy`` values (a mean per parameter; every image draws around it
with the spread in ``ANATOMY``) plus a ``Scanner`` protocol that every image of the cohort shares
up to small per-image jitter. ``make_cohorts(K, rng)`` spreads K cohorts over every style dimension:
for each parameter the K cohort means are K evenly spaced levels of its range, in an independent
random order per parameter. Every cohort therefore differs from every other in many small ways, and
no single parameter separates them (the per-image spread overlaps neighbouring levels): a model has
to combine anatomy statistics and scanner texture, as on the real data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .phantom import Anatomy
from .scanner import Scanner

# parameter: (low, high) of cohort means, per-image std, hard limits
ANATOMY: dict[str, tuple[float, float, float, float, float]] = {
    "z": (0.44, 0.56, 0.22, 0.03, 0.97),
    "body_a": (99.5, 106.5, 5.0, 80.0, 122.0),
    "aspect": (0.67, 0.73, 0.04, 0.55, 0.85),  # body_b / body_a
    "body_p": (2.12, 2.38, 0.12, 1.9, 2.8),
    "fat": (0.07, 0.11, 0.022, 0.02, 0.2),
    "wall": (7.1, 9.4, 1.1, 4.0, 13.0),
    "lung_scale": (0.93, 0.99, 0.035, 0.8, 1.06),
    "lung_p": (2.11, 2.34, 0.1, 1.9, 2.7),
    "mediastinum": (0.94, 1.11, 0.09, 0.7, 1.4),
    "heart_scale": (0.91, 1.09, 0.1, 0.6, 1.4),
    "lung_hu": (-872.5, -847.5, 12.0, -920.0, -790.0),
    "lung_gradient": (40.0, 70.0, 15.0, 0.0, 130.0),
    "lung_texture": (11.5, 18.5, 3.5, 3.0, 32.0),
    "vessel_density": (0.9, 1.2, 0.13, 0.5, 1.7),
    "vessel_caliber": (0.94, 1.11, 0.07, 0.7, 1.4),
    "lesion_rate": (0.55, 1.25, 0.0, 0.0, 3.0),
    "cy": (115.5, 120.5, 3.0, 100.0, 135.0),
    "table_gap": (6.0, 10.0, 2.0, 1.0, 20.0),
    "table_curve": (0.85, 1.75, 0.25, 0.0, 3.0),
    "table_hu": (170.0, 270.0, 35.0, 50.0, 450.0),
}

# scanner parameter: (low, high) of cohort means
SCANNER: dict[str, tuple[float, float]] = {
    "floor": (-1057.5, -1012.5),  # HU shown as black: level = floor + width / 2
    "width": (1125.0, 1275.0),
    "noise": (17.0, 27.0),
    "coarse": (0.175, 0.525),
    "kernel": (-0.035, 0.095),
    "gamma": (0.95, 1.05),
}


@dataclass(frozen=True)
class Cohort:
    """A population + protocol: anatomy parameter means and a scanner."""

    name: str
    means: dict = field(default_factory=dict)  # ANATOMY parameter → cohort mean
    scanner: Scanner = field(default_factory=Scanner)
    spread: float = 1.0  # multiplies every per-image std

    def to_dict(self) -> dict:
        return {"name": self.name, "means": dict(self.means), "scanner": self.scanner.to_dict(), "spread": self.spread}

    @classmethod
    def from_dict(cls, d: dict) -> "Cohort":
        return cls(d["name"], dict(d["means"]), Scanner.from_dict(d["scanner"]), float(d.get("spread", 1.0)))

    def sample_anatomy(self, rng: np.random.Generator) -> Anatomy:
        """A new patient/slice from this cohort."""
        v = {}
        for name, (_lo, _hi, sd, lim_lo, lim_hi) in ANATOMY.items():
            mean = self.means.get(name, 0.5 * (_lo + _hi))
            x = mean + rng.normal(0.0, sd * self.spread) if sd else mean
            v[name] = float(min(lim_hi, max(lim_lo, x)))
        body_a = v.pop("body_a")
        aspect = v.pop("aspect")
        lesion_rate = float(rng.gamma(2.0, v.pop("lesion_rate") / 2.0))  # per-patient, mean = cohort mean
        return Anatomy(
            seed=int(rng.integers(2**63 - 1)),
            cx=float(128.0 + rng.normal(0.0, 2.5)),
            body_a=body_a,
            body_b=body_a * aspect,
            lesion_rate=lesion_rate,
            **v,
        )

    def sample_scanner(self, rng: np.random.Generator) -> Scanner:
        """This cohort's protocol with per-image jitter."""
        return self.scanner.jitter(rng, self.spread)


def _levels(rng: np.random.Generator, k: int, lo: float, hi: float, jitter: float = 0.25) -> np.ndarray:
    """K cohort means spread over [lo, hi] in random order (evenly spaced levels, jittered)."""
    if k == 1:
        return np.array([rng.uniform(lo, hi)])
    step = (hi - lo) / (k - 1)
    lv = lo + step * np.arange(k) + rng.uniform(-jitter, jitter, k) * step
    return rng.permutation(np.clip(lv, lo, hi))


def make_cohorts(k: int, rng: np.random.Generator, *, separation: float = 1.0) -> list[Cohort]:
    """K cohorts ``t1..tK`` spread over every anatomy and scanner dimension.

    ``separation`` scales the spread of the cohort means around the middle of each range (1 = the
    ranges above, tuned so that a linear model on simple features reaches ~0.9 accuracy on 5
    classes and nearest-pixel matching ~0.45; smaller = closer cohorts, a harder task; 2 = easier).
    """
    if k < 1:
        raise ValueError(f"need at least one cohort, got {k}")
    means: list[dict] = [{} for _ in range(k)]
    for name, (lo, hi, *_rest) in ANATOMY.items():
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * separation
        for i, x in enumerate(_levels(rng, k, mid - half, mid + half)):
            means[i][name] = float(x)
    scan: list[dict] = [{} for _ in range(k)]
    for name, (lo, hi) in SCANNER.items():
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * separation
        for i, x in enumerate(_levels(rng, k, mid - half, mid + half)):
            scan[i][name] = float(x)
    cohorts = []
    for i in range(k):
        fov = float(rng.uniform(124.0, 128.0)) if rng.random() < 0.4 else 0.0
        floor = scan[i].pop("floor")
        sc = replace(Scanner(), coarse_cells=int(rng.integers(32, 72)), fov=fov, level=floor + scan[i]["width"] / 2,
                     body_noise=float(rng.uniform(0.2, 0.6)), **scan[i])
        cohorts.append(Cohort(name=f"t{i + 1}", means=means[i], scanner=sc))
    return cohorts


__all__ = ["ANATOMY", "SCANNER", "Cohort", "make_cohorts"]
