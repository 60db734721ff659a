"""The model registry: every trainable model is registered once by name and built by ``create_model``.

As in timm, a model's defaults (its input ``Preprocess``, how its embeddings compare, the training
hyper-parameters of the paper it reproduces) live beside its definition in a small ``ModelSpec``,
not in the caller::

    @register_model("siamese_cnn", family="siamese", kind="embedding", metric="l2",
                    preprocess=Preprocess(256), train_defaults=dict(epochs=30, batch_size=32, lr=1e-4))
    def siamese_cnn(**kw): ...

    model = create_model("siamese_cnn", input_size=128)
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from fprt.errors import ModelError
from fprt.preprocess import Preprocess

FAMILIES = ("siamese", "pair", "classifier", "features")
FAMILY_KINDS = {"siamese": "embedding", "pair": "pair", "classifier": "classifier", "features": "embedding"}


@dataclass(frozen=True)
class ModelSpec:
    """What fprt knows about a registered model besides how to build it."""

    name: str
    family: str
    """``siamese`` (contrastive embedding), ``pair`` (pair scorer), ``classifier``, ``features`` (frozen + sklearn head)."""
    kind: str
    """ModelMeta kind: ``embedding``, ``pair`` or ``classifier``."""
    builder: Callable[..., Any]
    preprocess: Preprocess
    metric: str
    """How the model's embeddings compare: ``l2`` or ``cosine``."""
    train_defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def accepts(self) -> set[str]:
        """Keyword arguments the builder takes."""
        return {
            p.name
            for p in inspect.signature(self.builder).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    family: str,
    preprocess: Preprocess,
    metric: str,
    train_defaults: dict[str, Any] | None = None,
    description: str = "",
):
    """Decorator registering a model builder under ``name``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        doc = description or (inspect.getdoc(builder) or "").split("\n", 1)[0]
        _REGISTRY[name] = ModelSpec(
            name=name,
            family=family,
            kind=FAMILY_KINDS[family],
            builder=builder,
            preprocess=preprocess,
            metric=metric,
            train_defaults=dict(train_defaults or {}),
            description=doc,
        )
        return builder

    return decorator


def _ensure_loaded() -> None:
    # importing the package registers every built-in model
    import fprt.trainer.models  # noqa: F401


def list_models(family: str | None = None) -> list[str]:
    """Registered model names (sorted), optionally of one family."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def get_spec(name: str) -> ModelSpec:
    """The ``ModelSpec`` registered as ``name``; a "did you mean" ``ModelError`` otherwise."""
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}.{hint}")
    return _REGISTRY[name]


def create_model(name: str, *, weights: str | None = None, **kwargs):
    """Build the registered model ``name`` with ``kwargs``; ``weights`` = a local torchvision state dict.

    The built module remembers its arguments in ``model.fprt_model_kwargs`` (what ``ModelMeta.model_kwargs``
    stores, so ``load_checkpoint`` can rebuild it) and its name in ``model.fprt_model_name``.
    Nothing is ever downloaded: torchvision backbones are built with ``weights=None``.
    """
    spec = get_spec(name)
    allowed = spec.accepts()
    unknown = set(kwargs) - allowed
    if unknown:
        raise ModelError(
            f"model {name!r} does not take argument(s) {sorted(unknown)}; it takes {sorted(allowed - {'weights'})}"
        )
    if weights is not None and "weights" not in allowed:
        raise ModelError(f"model {name!r} has no pretrained backbone; --weights does not apply to it")
    call = dict(kwargs)
    if "weights" in allowed:
        call["weights"] = weights
    model = spec.builder(**call)
    model.fprt_model_name = name
    model.fprt_model_kwargs = dict(kwargs)
    return model
