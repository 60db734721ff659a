"""Distances and similarities between embeddings, as in pytorch-metric-learning: each one knows whether a
larger value means closer (``larger_is_closer``), so losses, miners and scorers work with either.

- ``LpDistance`` (``metric = "l2"``): Euclidean distance, smaller is closer.
- ``CosineSimilarity`` (``"cosine"``) and ``DotProductSimilarity`` (``"ip"``): larger is closer.

``pairwise(a, b)`` compares row i of ``a`` with row i of ``b`` (N); ``matrix(a, b)`` compares every
row of ``a`` with every row of ``b`` (N×M). The Euclidean distance is clamped at 1e-12 before the square
root so that identical embeddings get a zero (not NaN) gradient.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

_EPS = 1e-12


class BaseDistance:
    metric: str = ""
    larger_is_closer: bool = False

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def matrix(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def closer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Element-wise: is ``x`` closer than ``y``?"""
        return x > y if self.larger_is_closer else x < y

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LpDistance(BaseDistance):
    """Euclidean (p = 2) distance."""

    metric = "l2"
    larger_is_closer = False

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).pow(2).sum(dim=1).clamp_min(_EPS).sqrt()

    def matrix(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1)[None, :] - 2.0 * (a @ b.T)
        return sq.clamp_min(_EPS).sqrt()


class CosineSimilarity(BaseDistance):
    metric = "cosine"
    larger_is_closer = True

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(dim=1)

    def matrix(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


class DotProductSimilarity(BaseDistance):
    metric = "ip"
    larger_is_closer = True

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=1)

    def matrix(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b.T


_BY_METRIC = {"l2": LpDistance, "cosine": CosineSimilarity, "ip": DotProductSimilarity}


def get_distance(metric: str) -> BaseDistance:
    """The distance for a ``ModelMeta.metric`` name (``l2``, ``cosine``, ``ip``)."""
    try:
        return _BY_METRIC[metric]()
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(_BY_METRIC)}") from None
