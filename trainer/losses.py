"""Losses. ``ContrastiveLoss`` takes its comparison as an argument (``distance=``), as in
pytorch-metric-learning, so the same loss trains Euclidean and cosine embeddings.

For a pair with value v (distance or similarity) and target y (1 = match, 0 = non-match):

- distance (smaller is closer): ``y · relu(v − pos_margin)^p + (1 − y) · relu(neg_margin − v)^p``
- similarity (larger is closer): ``y · relu(pos_margin − v)^p + (1 − y) · relu(v − neg_margin)^p``

Defaults: Euclidean ``pos_margin = 0``, ``neg_margin = 1.0`` (the AIMultimediaLab margin), p = 2 —
i.e. ``y·d² + (1 − y)·max(0, 1 − d)²`` averaged over pairs (Hadsell et al. 2006 without the ½);
cosine ``pos_margin = 1``, ``neg_margin = 0``. ``reduction``: ``mean`` (over pairs), ``sum``, or
``nonzero`` (mean over pairs with a non-zero loss, pytorch-metric-learning's AvgNonZeroReducer).
Pair scorers use ``torch.nn.BCEWithLogitsLoss``, classifiers ``torch.nn.CrossEntropyLoss``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fprt.trainer.distances import BaseDistance, LpDistance

REDUCTIONS = ("mean", "sum", "nonzero", "none")


class ContrastiveLoss(nn.Module):
    def __init__(
        self,
        distance: BaseDistance | None = None,
        pos_margin: float | None = None,
        neg_margin: float | None = None,
        power: float = 2.0,
        reduction: str = "mean",
    ):
        super().__init__()
        self.distance = distance if distance is not None else LpDistance()
        inverted = self.distance.larger_is_closer
        self.pos_margin = float(pos_margin if pos_margin is not None else (1.0 if inverted else 0.0))
        self.neg_margin = float(neg_margin if neg_margin is not None else (0.0 if inverted else 1.0))
        self.power = float(power)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def per_pair(self, values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of each pair from its distance/similarity ``values`` and 0/1 ``targets``."""
        y = targets.to(values.dtype)
        if self.distance.larger_is_closer:
            pos, neg = F.relu(self.pos_margin - values), F.relu(values - self.neg_margin)
        else:
            pos, neg = F.relu(values - self.pos_margin), F.relu(self.neg_margin - values)
        return y * pos.pow(self.power) + (1.0 - y) * neg.pow(self.power)

    def from_values(self, values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        losses = self.per_pair(values, targets)
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        if self.reduction == "nonzero":
            nonzero = (losses > 0).sum()
            return losses.sum() / nonzero.clamp_min(1)
        return losses.mean()

    def forward(self, a: torch.Tensor, b: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of the pairs (``a[i]``, ``b[i]``) with 0/1 ``targets[i]``."""
        return self.from_values(self.distance.pairwise(a, b), targets)

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}, pos_margin={self.pos_margin}, neg_margin={self.neg_margin}, power={self.power}"
