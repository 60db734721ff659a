"""``pair_xattn``: the 2025 VIT Visioneers pair scorer.

Both images go through one shared backbone; its last feature maps become tokens (1×1 projection to
``dim``); each image's tokens attend to the other's (cross-attention, shared weights, residual +
LayerNorm), are averaged, and an *adaptive similarity* — ``|a − b|`` and ``a · b`` (element-wise)
concatenated — feeds an MLP that outputs the probability that the two images match
(membership: the real image was used to make the generated one; subsets: same subset).
The score is symmetric in its two inputs.

Forward contract (``ModelMeta.kind == "pair"``): ``forward(a, b) -> N`` probabilities in [0, 1];
``embed(x) -> N×dim`` (L2-normalised mean token before cross-attention, for neighbour search with
``metric = "cosine"``); ``pair_logits(a, b)`` is what BCE training uses.
``backbone``: a torchvision name (paper: ``resnet50``) or ``cnn`` (the ``siamese_cnn`` conv trunk,
small and fast on a CPU).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fprt.preprocess import Preprocess
from fprt.trainer.models.backbones import BACKBONES, Backbone
from fprt.trainer.models.registry import register_model
from fprt.trainer.models.siamese import ConvTrunk


class PairCrossAttention(nn.Module):
    def __init__(
        self,
        backbone: str = "resnet50",
        in_chans: int = 3,
        dim: int = 256,
        heads: int = 4,
        weights: str | None = None,
    ):
        super().__init__()
        if backbone == "cnn":
            self.trunk = ConvTrunk(in_chans)
            channels = self.trunk.out_channels
            if weights is not None:
                from fprt.errors import ModelError

                raise ModelError("--weights loads torchvision backbones; backbone 'cnn' has none")
        else:
            if backbone not in BACKBONES:
                from fprt.errors import ModelError

                raise ModelError(f"unknown backbone {backbone!r}; expected 'cnn' or one of {sorted(BACKBONES)}")
            self.trunk = Backbone(backbone, in_chans=in_chans)
            if weights is not None:
                self.trunk.load_weights(weights)
            channels = self.trunk.out_channels
        self.uses_backbone = backbone != "cnn"
        self.embedding_dim = int(dim)
        self.proj = nn.Conv2d(channels, dim, kernel_size=1)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.trunk.forward_maps(x) if self.uses_backbone else self.trunk(x)
        return self.proj(maps).flatten(2).transpose(1, 2)  # N × L × dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tokens(x).mean(dim=1), p=2.0, dim=1, eps=1e-12)

    def _attend(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(q, kv, kv, need_weights=False)
        return self.norm(q + out).mean(dim=1)

    def logits_from_tokens(self, ta: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        """Pair logits from precomputed ``tokens`` (lets validation encode each image once)."""
        xa, xb = self._attend(ta, tb), self._attend(tb, ta)
        sim = torch.cat([(xa - xb).abs(), xa * xb], dim=1)
        return self.mlp(sim).squeeze(1)

    def pair_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.logits_from_tokens(self.tokens(a), self.tokens(b))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.pair_logits(a, b))


@register_model(
    "pair_xattn",
    family="pair",
    preprocess=Preprocess(size=224, channels=3, normalize="imagenet"),
    metric="cosine",
    train_defaults=dict(epochs=20, batch_size=32, lr=1e-4),
)
def pair_xattn(backbone: str = "resnet50", in_chans: int = 3, dim: int = 256, heads: int = 4, weights: str | None = None):
    """VIT Visioneers 2025 pair scorer: shared backbone, cross-attention, |a−b| ⊕ a·b → MLP → probability."""
    return PairCrossAttention(backbone=backbone, in_chans=in_chans, dim=dim, heads=heads, weights=weights)
