"""Siamese embedding branches (one branch; the twin shares its weights, so one module is enough).

``siamese_cnn`` is the embedding branch of the 2025 AIMultimediaLab submission (99.04 % on subsets):
four blocks of 3×3 convolution without padding → ReLU → 2×2 max-pool (16, 32, 64, 128 filters),
flatten (128×14×14 = 25,088 at 256×256), dense 256 → ReLU, L2 normalisation; ≈ 6.5 M parameters.
``siamese_resnet18`` / ``siamese_resnet50`` put the same head on a torchvision backbone.

Forward contract (``ModelMeta.kind == "embedding"``): ``forward(x: N×C×H×W float32) -> N×D``,
L2-normalised rows; compared with Euclidean distance (``metric = "l2"``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fprt.errors import ModelError
from fprt.preprocess import Preprocess
from fprt.trainer.models.backbones import Backbone
from fprt.trainer.models.registry import register_model

SIAMESE_TRAIN_DEFAULTS = dict(epochs=30, batch_size=32, lr=1e-4, margin=1.0)  # 30 epochs, Adam: AIMultimediaLab 2025


def conv_trunk_size(input_size: int, filters=(16, 32, 64, 128)) -> tuple[int, int]:
    """Side length and flattened size after the conv trunk: each block does −2 (3×3 valid conv) then ÷2 (pool)."""
    side = int(input_size)
    for _ in filters:
        side = (side - 2) // 2
        if side < 1:
            raise ModelError(f"input_size {input_size} is too small for {len(filters)} conv blocks")
    return side, filters[-1] * side * side


class ConvTrunk(nn.Sequential):
    """Blocks of 3×3 valid conv → ReLU → 2×2 max-pool."""

    def __init__(self, in_chans: int = 1, filters=(16, 32, 64, 128)):
        layers: list[nn.Module] = []
        prev = in_chans
        for f in filters:
            layers += [nn.Conv2d(prev, f, kernel_size=3, padding=0), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            prev = f
        super().__init__(*layers)
        self.out_channels = prev


class SiameseCNN(nn.Module):
    """The AIMultimediaLab branch: conv trunk → flatten → dense → ReLU → L2 normalisation."""

    def __init__(self, input_size: int = 256, in_chans: int = 1, embedding_dim: int = 256, filters=(16, 32, 64, 128)):
        super().__init__()
        self.input_size = int(input_size)
        self.embedding_dim = int(embedding_dim)
        self.features = ConvTrunk(in_chans, tuple(filters))
        _, self.flatten_size = conv_trunk_size(input_size, tuple(filters))
        self.fc = nn.Linear(self.flatten_size, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return F.normalize(F.relu(self.fc(x)), p=2.0, dim=1, eps=1e-12)


class SiameseBackbone(nn.Module):
    """The same head (dense → ReLU → L2 normalisation) on a torchvision backbone's pooled features."""

    def __init__(self, backbone: str, in_chans: int = 1, embedding_dim: int = 256, weights: str | None = None):
        super().__init__()
        self.embedding_dim = int(embedding_dim)
        self.backbone = Backbone(backbone, in_chans=in_chans)
        if weights is not None:
            self.backbone.load_weights(weights)
        self.fc = nn.Linear(self.backbone.out_channels, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(F.relu(self.fc(self.backbone(x))), p=2.0, dim=1, eps=1e-12)


@register_model(
    "siamese_cnn",
    family="siamese",
    preprocess=Preprocess(size=256, channels=1, normalize="unit"),
    metric="l2",
    train_defaults=SIAMESE_TRAIN_DEFAULTS,
)
def siamese_cnn(input_size: int = 256, in_chans: int = 1, embedding_dim: int = 256):
    """AIMultimediaLab 2025 Siamese CNN branch (4 conv blocks 16/32/64/128, dense 256, L2 norm; 6.5 M params at 256²)."""
    return SiameseCNN(input_size=input_size, in_chans=in_chans, embedding_dim=embedding_dim)


@register_model(
    "siamese_resnet18",
    family="siamese",
    preprocess=Preprocess(size=224, channels=3, normalize="imagenet"),
    metric="l2",
    train_defaults=SIAMESE_TRAIN_DEFAULTS,
)
def siamese_resnet18(in_chans: int = 3, embedding_dim: int = 256, weights: str | None = None):
    """Siamese branch on a torchvision ResNet-18 (dense 256, L2 norm)."""
    return SiameseBackbone("resnet18", in_chans=in_chans, embedding_dim=embedding_dim, weights=weights)


@register_model(
    "siamese_resnet50",
    family="siamese",
    preprocess=Preprocess(size=224, channels=3, normalize="imagenet"),
    metric="l2",
    train_defaults=SIAMESE_TRAIN_DEFAULTS,
)
def siamese_resnet50(in_chans: int = 3, embedding_dim: int = 256, weights: str | None = None):
    """Siamese branch on a torchvision ResNet-50 (dense 256, L2 norm)."""
    return SiameseBackbone("resnet50", in_chans=in_chans, embedding_dim=embedding_dim, weights=weights)
