"""What a scoring method is: which image sets it needs embedded, and how it turns their
embeddings (through ``reductions.search``) into one decision and one continuous score per test image.

The pipeline embeds the sets (cache, decode, model), then calls ``Method.score(ctx)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fprt.errors import FprtError


SCORE_CONVENTION = ("larger = more likely the decision taken, in every method of both tasks "
                    "(membership: used; subsets: the chosen subset); distances enter negated")


@dataclass
class ImageSet:
    """A named list of images to embed; ``labels`` (one per image) for labelled reference sets."""

    name: str
    paths: list[Path]
    labels: list[str] | None = None


@dataclass
class MethodOptions:
    k: int = 5  # neighbours reported per test image (and voting for knn, pairs scored for pair)
    alpha: float = 0.5  # max-sigma: threshold = mu + alpha * sigma (Medhastra's alpha = 0.5)
    threshold: float | None = None  # a fixed decision threshold in the score's own units (overrides the rule's)
    ssim_size: int = 256  # ssim-max: images compared at this size
    ssim_exact: bool = False  # ssim-max: every pair (slow) instead of the prefilter's candidates

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "alpha": self.alpha, "threshold": self.threshold, "ssim_size": self.ssim_size,
                "ssim_exact": self.ssim_exact}


@dataclass
class MethodResult:
    """Per test image (in the order of the test set): decision, score, extra columns, neighbours."""

    decisions: list[str]
    score: np.ndarray
    score_name: str  # what ``score`` is, e.g. "max cosine to generated"
    larger_means: str  # what a larger score means, e.g. "more likely used"
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    neighbours: list[list[str]] | None = None
    neighbour_scores: np.ndarray | None = None
    neighbour_score_name: str = ""
    class_scores: np.ndarray | None = None  # subsets: M×K, larger = more likely that class
    params: dict[str, Any] = field(default_factory=dict)  # thresholds and settings chosen (summary.json)
    evidence: Any = None  # fprt.runtime.evidence.EvidenceTable (``--method auto``): summary.json "evidence"


@dataclass
class Context:
    """What a method sees: the embedded sets, the model's metadata, the options."""

    task: str
    classes: list[str]
    metric: str
    meta: Any
    options: MethodOptions
    sets: dict[str, ImageSet]
    outputs: dict[str, dict[str, np.ndarray]]  # set name → output name → rows (host arrays)
    backend: Any = None
    load_pixels: Callable[..., np.ndarray] | None = None  # (paths, size=None): decoded at the model's size or ``size``
    timings: dict[str, float] = field(default_factory=dict)
    pixel_features: Any = None  # the PixelFeatureSpec whose outputs the pipeline added to ``outputs`` (or None)

    def emb(self, set_name: str, output: str = "embedding") -> np.ndarray:
        try:
            return self.outputs[set_name][output]
        except KeyError:
            raise FprtError(f"internal: set {set_name!r} has no output {output!r}") from None

    def names(self, set_name: str) -> list[str]:
        return [p.name for p in self.sets[set_name].paths]


class Method:
    """Base of every scoring method. Subclasses set the class attributes and implement ``score``."""

    name: str = ""
    task: str = ""
    summary: str = ""
    source: str = ""
    kinds: tuple[str, ...] = ("embedding",)  # model kinds it scores with ("classical": no model)
    needs_reference: bool = False
    output: str = "embedding"  # the model output it compares
    model_optional: bool = False  # runs with a model, or without one on ``features()`` standing in for it

    def features(self, options: MethodOptions):
        """Classical methods: the feature extractor that stands in for a model; None = use the model."""
        return None

    def image_sets(self, data) -> list[ImageSet]:  # noqa: ANN001 - ScoreData, see fprt.runtime.score
        raise NotImplementedError

    def pixel_features(self, sets: dict[str, ImageSet], model):
        """The pixel features (``fprt.runtime.evidence.fingerprint.PixelFeatureSpec``) the pipeline should
        compute from each image's one decode and cache, or None (the default: the method needs none).
        ``model``: the backend the images are embedded with (or the stand-in ``features()``)."""
        return None

    def score(self, ctx: Context) -> MethodResult:
        raise NotImplementedError


def as_numpy(x) -> np.ndarray:
    """Host NumPy view of a NumPy array or a (CUDA) torch tensor."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def neighbour_names(indices: np.ndarray, names: list[str]) -> list[list[str]]:
    return [[names[j] for j in row if j >= 0] for row in np.asarray(indices)]
