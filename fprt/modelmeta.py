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


def csv_unsafe(text: str) -> str | None:
    """Why ``text`` cannot be one field of fprt's CSV files as it stands (None when it can): empty, a
    comma, a quote, a line break, spaces at either end, or characters UTF-8 cannot encode."""
    if not text:
        return "empty"
    for ch, what in ((",", "a comma"), ('"', "a quote"), ("\n", "a line break"), ("\r", "a carriage return")):
        if ch in text:
            return f"holds {what}"
    if text != text.strip():
        return "starts or ends with a space"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds bytes that are not UTF-8"
    return None


def _check_class_names(names) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise ValueError(f"ModelMeta.class_names must be a list of strings, got {names!r}")
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ValueError(f"ModelMeta.class_names holds duplicates: {dupes}")
    for c in names:
        why = csv_unsafe(c)
        if why:
            raise ValueError(f"ModelMeta.class_names: {c!r} {why}; a class name is written as a CSV field (run.csv)")
    return list(names)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
        """The schema: every field of the right type and range (``ValueError`` saying which is not)."""
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"ModelMeta.model must be a non-empty string, got {self.model!r}")
        if isinstance(self.preprocess, dict):
            self.preprocess = Preprocess.from_dict(self.preprocess)
        if not isinstance(self.preprocess, Preprocess):
            raise ValueError(f"ModelMeta.preprocess must be an object (size, resize, channels, normalize), got {self.preprocess!r}")
        if self.kind not in KINDS:
            raise ValueError(f"ModelMeta.kind must be one of {KINDS}, got {self.kind!r}")
        if self.task not in TASKS:
            raise ValueError(f"ModelMeta.task must be one of {TASKS}, got {self.task!r}")
        larger_is_closer(self.metric)
        self.class_names = _check_class_names(self.class_names)
        for name in ("model_kwargs", "extra"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"ModelMeta.{name} must be an object, got {type(getattr(self, name)).__name__}")
        for key, want in (("input_size", self.preprocess.size), ("in_chans", self.preprocess.channels)):
            if key in self.model_kwargs and self.model_kwargs[key] != want:
                raise ValueError(f"ModelMeta.model_kwargs[{key!r}] is {self.model_kwargs[key]!r} but preprocess says {want}")
        if self.head is not None and not isinstance(self.head, dict):
            raise ValueError(f"ModelMeta.head must be an object or null, got {type(self.head).__name__}")
        if self.embedding_dim is not None and (not _is_int(self.embedding_dim) or self.embedding_dim < 1):
            raise ValueError(f"ModelMeta.embedding_dim must be a positive integer or null, got {self.embedding_dim!r}")
        if self.threshold is not None and not _is_finite(self.threshold):
            raise ValueError(f"ModelMeta.threshold must be a finite number or null, got {self.threshold!r}")
        if self.centroids is not None:
            self._check_centroids()

    def _check_centroids(self) -> None:
        rows, k = self.centroids, len(self.class_names)
        if not isinstance(rows, list) or len(rows) != k:
            got = len(rows) if isinstance(rows, list) else type(rows).__name__
            raise ValueError(f"ModelMeta has {got} centroids for {k} classes")
        dims = {len(r) if isinstance(r, list) else -1 for r in rows}
        want = self.embedding_dim
        if len(dims) != 1 or -1 in dims or (want is not None and dims != {want}) or 0 in dims:
            raise ValueError(
                f"ModelMeta.centroids must be {k} lists of {want or 'the same number of'} numbers "
                f"(one per class, the embedding size), got lengths {sorted(len(r) if isinstance(r, list) else r for r in rows)}"
            )
        if not all(_is_finite(v) for r in rows for v in r):
            raise ValueError("ModelMeta.centroids must hold finite numbers only")

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
        if not isinstance(data, dict):
            raise ValueError(f"ModelMeta must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelMeta field(s): {sorted(unknown)}")
        missing = {"model", "kind", "task", "preprocess", "class_names"} - set(data)
        if missing:
            raise ValueError(f"ModelMeta is missing field(s): {sorted(missing)}")
        meta = cls(**data)
        if len(meta.class_names) < 2:  # a model file names the classes it decides between
            raise ValueError(f"ModelMeta.class_names must name at least 2 classes, got {meta.class_names!r}")
        return meta

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
