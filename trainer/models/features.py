"""Frozen feature extractors (the 2025 AIMultimediaLab and 2023 baselines): a torchvision backbone's
pooled penultimate features, never trained; a scikit-learn head (SVM, logistic regression, k-means,
agglomerative clustering) is fitted on top and stored as arrays in ``ModelMeta.head``
(see ``fprt.trainer.heads``).

Forward contract: ``ModelMeta.kind == "embedding"``, ``forward(x) -> N×D`` (D = 2048 ResNet-50,
1024 DenseNet-121, 1280 MobileNetV2 / EfficientNet-B0); compared with cosine similarity.
Without ``--weights`` the backbone is randomly initialised (nothing is downloaded): random
convolutional features still carry texture statistics, but ImageNet weights are what the papers used.
"""

from __future__ import annotations

import torch
from torch import nn

from fprt.preprocess import Preprocess
from fprt.trainer.models.backbones import Backbone
from fprt.trainer.models.registry import register_model


class FrozenFeatures(nn.Module):
    """A backbone that stays in eval mode and never receives gradients."""

    def __init__(self, backbone: str, in_chans: int = 3, weights: str | None = None):
        super().__init__()
        self.backbone = Backbone(backbone, in_chans=in_chans)
        if weights is not None:
            self.backbone.load_weights(weights)
        self.embedding_dim = self.backbone.out_channels
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # frozen: batch-norm statistics never move
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


_IMAGENET_224 = Preprocess(size=224, channels=3, normalize="imagenet")


def _register(name: str, backbone: str, label: str) -> None:
    def build(in_chans: int = 3, weights: str | None = None):
        return FrozenFeatures(backbone, in_chans=in_chans, weights=weights)

    build.__doc__ = f"Frozen {label} features (global average pool) for a scikit-learn head."
    register_model(f"features_{backbone}", family="features", preprocess=_IMAGENET_224, metric="cosine",
                   train_defaults=dict(batch_size=64, head="svm"))(build)


for _backbone, _label in (
    ("resnet18", "ResNet-18"),
    ("resnet50", "ResNet-50"),
    ("densenet121", "DenseNet-121"),
    ("mobilenet_v2", "MobileNetV2"),
    ("efficientnet_b0", "EfficientNet-B0"),
):
    _register(_backbone, _backbone, _label)
