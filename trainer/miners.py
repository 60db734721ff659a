"""Online pair mining: pick the informative pairs out of every (a, b) combination in a batch.

``HardNegativeMiner`` looks at the N×M matrix of distances (or similarities) between the anchors of a
batch (rows of ``a``) and their possible partners (rows of ``b``) and, for each anchor, keeps

- its ``negatives_per_anchor`` closest negatives (different label) — the ones the contrastive loss
  learns most from, instead of the random negatives the papers used;
- its positives (same label): all of them, or — with ``positives_per_anchor`` — only that many of
  the farthest ones, so positives and negatives stay balanced.

With ``margin`` set, only negatives still inside the margin (closer than ``margin`` for a distance,
more similar than ``margin`` for a similarity) are kept: the others would contribute a zero loss.
"""

from __future__ import annotations

import torch

from fprt.trainer.distances import BaseDistance, LpDistance


class HardNegativeMiner:
    def __init__(
        self,
        distance: BaseDistance | None = None,
        negatives_per_anchor: int = 1,
        positives_per_anchor: int | None = None,
        margin: float | None = None,
    ):
        if negatives_per_anchor < 1:
            raise ValueError(f"negatives_per_anchor must be ≥ 1, got {negatives_per_anchor}")
        if positives_per_anchor is not None and positives_per_anchor < 1:
            raise ValueError(f"positives_per_anchor must be ≥ 1 or None, got {positives_per_anchor}")
        self.distance = distance if distance is not None else LpDistance()
        self.negatives_per_anchor = int(negatives_per_anchor)
        self.positives_per_anchor = positives_per_anchor
        self.margin = margin

    def _hardest(self, values: torch.Tensor, mask: torch.Tensor, k: int, closest: bool):
        """Per row, the ``k`` entries inside ``mask`` that are closest (or farthest): (rows, cols)."""
        k = min(k, values.shape[1])
        # "closest" means smallest distance / largest similarity
        largest = self.distance.larger_is_closer if closest else not self.distance.larger_is_closer
        fill = float("-inf") if largest else float("inf")
        top = torch.topk(values.masked_fill(~mask, fill), k, dim=1, largest=largest)
        rows = torch.arange(values.shape[0], device=values.device)[:, None].expand(-1, k).reshape(-1)
        cols = top.indices.reshape(-1)
        keep = torch.isfinite(top.values.reshape(-1))
        if closest and self.margin is not None:
            v = top.values.reshape(-1)
            keep &= (v > self.margin) if self.distance.larger_is_closer else (v < self.margin)
        return rows[keep], cols[keep]

    @torch.no_grad()
    def mine(self, values: torch.Tensor, labels_a: torch.Tensor, labels_b: torch.Tensor):
        """From an N×M matrix of distances/similarities, return ``(rows, cols, targets)`` of the pairs to use."""
        same = labels_a[:, None] == labels_b[None, :]
        if self.positives_per_anchor is None:
            pos_r, pos_c = torch.nonzero(same, as_tuple=True)
        else:
            pos_r, pos_c = self._hardest(values, same, self.positives_per_anchor, closest=False)
        neg_r, neg_c = self._hardest(values, ~same, self.negatives_per_anchor, closest=True)
        rows = torch.cat([pos_r, neg_r])
        cols = torch.cat([pos_c, neg_c])
        targets = torch.cat([torch.ones_like(pos_r), torch.zeros_like(neg_r)])
        return rows, cols, targets

    def __call__(self, emb_a: torch.Tensor, labels_a: torch.Tensor, emb_b: torch.Tensor, labels_b: torch.Tensor):
        """Mine pairs between ``emb_a`` (N×D) and ``emb_b`` (M×D); returns ``(rows, cols, targets)``."""
        return self.mine(self.distance.matrix(emb_a, emb_b), labels_a, labels_b)
