"""Subset classifiers: the 2025 Medhastra ResNet-18 with a K-way head.

Trained with cross-entropy on labelled images (Adam 1e-4, batch 64, 10 epochs, ImageNet
normalisation at 224×224 in the paper). Forward contract (``ModelMeta.kind == "classifier"``):
``forward(x) -> (logits N×K, embedding N×D)``, the embedding being the penultimate (pooled) features,
which the runtime also uses for neighbour search (``metric = "cosine"``).
"""

from __future__ import annotations

import torch
from torch import nn

from fprt.preprocess import Preprocess
from fprt.trainer.models.backbones import Backbone
from fprt.trainer.models.registry import register_model

CLASSIFIER_TRAIN_DEFAULTS = dict(epochs=10, batch_size=64, lr=1e-4)


class BackboneClassifier(nn.Module):
    """A torchvision backbone with a new K-way linear head."""

    def __init__(self, backbone: str, num_classes: int, in_chans: int = 3, weights: str | None = None):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.backbone = Backbone(backbone, in_chans=in_chans)
        if weights is not None:
            self.backbone.load_weights(weights)
        self.embedding_dim = self.backbone.out_channels
        self.head = nn.Linear(self.embedding_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone(x)
        return self.head(emb), emb


_IMAGENET_224 = Preprocess(size=224, channels=3, normalize="imagenet")


@register_model("classifier_resnet18", family="classifier", preprocess=_IMAGENET_224, metric="cosine",
                train_defaults=CLASSIFIER_TRAIN_DEFAULTS)
def classifier_resnet18(num_classes: int = 5, in_chans: int = 3, weights: str | None = None):
    """Medhastra 2025 subset classifier: ResNet-18 with a K-way head (224², ImageNet normalisation)."""
    return BackboneClassifier("resnet18", num_classes, in_chans=in_chans, weights=weights)


@register_model("classifier_resnet50", family="classifier", preprocess=_IMAGENET_224, metric="cosine",
                train_defaults=CLASSIFIER_TRAIN_DEFAULTS)
def classifier_resnet50(num_classes: int = 5, in_chans: int = 3, weights: str | None = None):
    """ResNet-50 with a K-way head (224², ImageNet normalisation)."""
    return BackboneClassifier("resnet50", num_classes, in_chans=in_chans, weights=weights)
