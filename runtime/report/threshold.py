"""The decision threshold of a membership run, in the units of scores.csv's ``score`` column.

Each method stores its threshold in summary.json ``method.params`` in its own units (a closeness, an
SSIM, Hamming bits, a probability); ``score`` is sometimes that quantity and sometimes a shifted one.
``decision_threshold`` maps the params to score units, checks the value against the decisions
(every ``1`` above, every ``0`` at or below), and otherwise falls back to the boundary the decisions
themselves draw (midway between the highest ``0`` and the lowest ``1``), saying which one it used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Threshold:
    value: float | None
    source: str  # where the value came from, in words (shown beside the line)


def _from_params(method: str, params: dict) -> tuple[float, str] | None:
    if params.get("threshold_score") is not None:
        return float(params["threshold_score"]), "method params: threshold_score"
    if method == "vcmi-max":  # score = best closeness - threshold
        return 0.0, "vcmi-max: score is the closeness minus its threshold"
    if method == "phash" and params.get("threshold_bits") is not None:  # score = 64 - Hamming bits
        return 64.0 - float(params["threshold_bits"]), "phash: 64 - threshold_bits"
    for key in ("threshold_closeness", "threshold_ssim", "threshold_probability", "threshold"):
        if isinstance(params.get(key), (int, float)):
            return float(params[key]), f"method params: {key}"
    return None


def _consistent(t: float, scores: np.ndarray, used: np.ndarray) -> bool:
    """True when the threshold separates the decisions (with a little slack for ≥ vs > and rounding)."""
    tol = 1e-6 * max(1.0, abs(t))
    return bool(np.all(scores[used] >= t - tol) and np.all(scores[~used] <= t + tol))


def decision_threshold(summary: dict, scores: np.ndarray, decisions: list[str]) -> Threshold:
    scores = np.asarray(scores, dtype=np.float64)
    used = np.array([d == "1" for d in decisions])
    ok = np.isfinite(scores)
    scores, used = scores[ok], used[ok]
    method = summary.get("method", {})
    found = _from_params(method.get("name", ""), method.get("params") or {})
    if found is not None and _consistent(found[0], scores, used):
        return Threshold(found[0], found[1])
    if used.any() and (~used).any():
        lo, hi = float(scores[~used].max()), float(scores[used].min())
        if lo <= hi:
            why = "the boundary between the decisions (midway between the highest 0 and the lowest 1)"
            return Threshold((lo + hi) / 2, why)
    if found is not None:
        return Threshold(found[0], found[1] + " (does not split the decisions by score alone)")
    return Threshold(None, "no threshold: the method's params name none and every image got the same decision")
