"""``ModelMeta``: everything a model file carries besides its weights.

The trainer writes it as ``config.json`` in a run folder, export writes it into the ONNX
``metadata_props`` (one key, ``fprt.meta``, holding this JSON), and every runtime backend reads it
back, so a model file alone is enough to score: preprocessing, task, class names, centroids,
decision threshold, metric and direction of its scores.

Kinds of model (``kind``):

- ``embedding``  — one input ``image`` (N×C×H×W) → output ``embedding`` (N×D); Siamese branches and
  frozen feature extractors.
- ``pair``       — inputs ``image_a`` and ``image_b`` → output ``probability`` (N) that the two
  images are a match; the pair scorer.
- ``classifier`` — input ``image`` → outputs ``logits`` (N×K) and ``embedding`` (N×D, the
  penultimate features).

Metrics (``metric``) name how two embeddings compare: ``l2`` (Euclidean distance, smaller is
closer), ``cosine`` and ``ip`` (larger is closer). ``larger_is_closer`` says which.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fprt import __version__
from fprt.preprocess import Preprocess

KINDS = ("embedding", "pair", "classifier")
TASKS = ("subsets", "membership")
METRICS = ("l2", "cosine", "ip")
ONNX_METADATA_KEY = "fprt.meta"


def larger_is_closer(metric: str) -> bool:
    """True when a larger score means more similar (cosine, ip), False for distances (l2)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    return metric != "l2"


@dataclass
class ModelMeta:
    model: str
    kind: str
    task: str
    preprocess: Preprocess
    class_names: list[str]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    metric: str = "l2"
    embedding_dim: int | None = None
    centroids: list[list[float]] | None = None
    """Per-class embedding centroids in ``class_names`` order (subsets embedding models)."""
    threshold: float | None = None
    """Decision threshold on the model's score, chosen on validation (membership)."""
    head: dict[str, Any] | None = None
    """A fitted scikit-learn head stored as plain arrays (``features`` models); never pickled."""
    checkpoint_sha256: str | None = None
    fprt_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.preprocess, dict):
            self.preprocess = Preprocess.from_dict(self.preprocess)
        if self.kind not in KINDS:
            raise ValueError(f"ModelMeta.kind must be one of {KINDS}, got {self.kind!r}")
        if self.task not in TASKS:
            raise ValueError(f"ModelMeta.task must be one of {TASKS}, got {self.task!r}")
        larger_is_closer(self.metric)
        self.class_names = [str(c) for c in self.class_names]
        if self.centroids is not None and len(self.centroids) != len(self.class_names):
            raise ValueError(
                f"ModelMeta has {len(self.centroids)} centroids for {len(self.class_names)} classes"
            )

    @property
    def larger_is_closer(self) -> bool:
        return larger_is_closer(self.metric)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMeta":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelMeta field(s): {sorted(unknown)}")
        missing = {"model", "kind", "task", "preprocess", "class_names"} - set(data)
        if missing:
            raise ValueError(f"ModelMeta is missing field(s): {sorted(missing)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "ModelMeta":
        return cls.from_dict(json.loads(text))

    def to_onnx_metadata(self) -> dict[str, str]:
        """Key/value pairs for ``onnx.ModelProto.metadata_props``."""
        return {ONNX_METADATA_KEY: self.to_json(), "fprt.version": self.fprt_version}

    @classmethod
    def from_onnx_metadata(cls, props: dict[str, str], *, source: str = "model") -> "ModelMeta":
        """Read back what ``to_onnx_metadata`` wrote; a clear error naming ``source`` otherwise."""
        if ONNX_METADATA_KEY not in props:
            raise ValueError(
                f"{source}: no '{ONNX_METADATA_KEY}' metadata; this ONNX file was not exported by "
                "`fprt export-onnx` (export it from a training run first)"
            )
        try:
            return cls.from_json(props[ONNX_METADATA_KEY])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source}: corrupt '{ONNX_METADATA_KEY}' metadata: {exc}") from exc
