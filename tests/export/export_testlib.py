"""Helpers for the export tests: tiny models of every kind and class-patterned images.

The models are small stand-ins with the trainer's forward contracts (embedding → N×D; classifier →
(logits, embedding) on a torchvision ResNet-18; pair → probability N plus ``embed``), so every export
path runs in seconds. ``tests/export/test_export_trainer_models.py`` runs the trainer's own models.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess

SIZE = 64
CLASSES = ["t1", "t2", "t3"]


class TinyEmbed(nn.Module):
    """A Siamese-style branch: convs → dense → ReLU → L2 normalisation (N×D)."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.fc = nn.Linear(16 * 14 * 14, dim)

    def forward(self, x):
        return F.normalize(F.relu(self.fc(torch.flatten(self.features(x), 1))), dim=1)


class TinyClassifier(nn.Module):
    """torchvision ResNet-18 with a K-way head returning (logits, penultimate embedding)."""

    def __init__(self, k: int = 3):
        super().__init__()
        import torchvision

        net = torchvision.models.resnet18(weights=None, num_classes=k)
        self.head = net.fc
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x):
        e = self.net(x)
        return self.head(e), e


class TinyPair(nn.Module):
    """A pair scorer: shared trunk, |a−b| ⊕ a·b → linear → sigmoid; ``embed`` for neighbour search."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, dim, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(2 * dim, 1)

    def embed(self, x):
        return F.normalize(self.trunk(x), dim=1)

    def forward(self, a, b):
        ea, eb = self.trunk(a), self.trunk(b)
        return torch.sigmoid(self.head(torch.cat([(ea - eb).abs(), ea * eb], 1))).squeeze(1)


def make_model(kind: str, seed: int = 0):
    """``(model, ModelMeta)`` for ``kind`` in embedding / classifier / pair (deterministic weights)."""
    torch.manual_seed(seed)
    if kind == "embedding":
        model = TinyEmbed()
        meta = ModelMeta(model="tiny_embed", kind="embedding", task="subsets", preprocess=Preprocess(size=SIZE),
                         class_names=CLASSES, metric="l2", embedding_dim=32)
    elif kind == "classifier":
        model = TinyClassifier(len(CLASSES))
        meta = ModelMeta(model="tiny_classifier", kind="classifier", task="subsets",
                         preprocess=Preprocess(size=SIZE, channels=3, normalize="imagenet"), class_names=CLASSES,
                         metric="cosine", embedding_dim=512)
    elif kind == "pair":
        model = TinyPair()
        meta = ModelMeta(model="tiny_pair", kind="pair", task="membership", preprocess=Preprocess(size=SIZE),
                         class_names=["not_used", "used"], metric="cosine", embedding_dim=16, threshold=0.5)
    else:
        raise ValueError(kind)
    return model.eval(), meta


def class_image(cls: int, i: int, size: int = 80) -> np.ndarray:
    """A deterministic gray image whose pattern depends on its class (discs / stripes / checks) plus noise."""
    rng = np.random.default_rng(1000 * cls + i)
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 1)
    if cls == 0:
        base = 200 * (((xx - 0.5 - 0.1 * phase) ** 2 + (yy - 0.5) ** 2) < 0.08)
    elif cls == 1:
        base = 180 * (np.sin(2 * np.pi * (6 * yy + phase)) > 0)
    else:
        base = 160 * ((np.floor(8 * xx + phase) + np.floor(8 * yy)) % 2)
    img = base + 30 + rng.normal(0, 12, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)
