"""Run folders and checkpoints, written atomically and read without unpickling anything.

A run folder (``fprt train ... --out RUN``)::

    RUN/model.safetensors    best weights on validation; safetensors metadata ``fprt.meta`` = ModelMeta JSON
    RUN/config.json          {"meta": ModelMeta, "train": training arguments, "data": data summary,
                              "best": {...}, "status": "running" | "finished" | "early_stopped", ...}
    RUN/metrics.csv          one row per epoch (loss, validation metric, seconds)
    RUN/plots/*.png          loss curves, validation confusion matrix, PCA of embeddings
    RUN/state/               resume state: last.safetensors (weights after the last finished epoch),
                             optimizer.safetensors (its tensors) + state.json (epoch, early-stopping
                             counters, optimizer hyper-parameters)

``load_checkpoint(path)`` takes the run folder or its ``.safetensors`` file (which carries its
ModelMeta, so the file alone is enough) and returns ``(model in eval mode on the CPU, meta)``;
``meta.checkpoint_sha256`` is the SHA-256 of the weights file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch

from fprt.errors import ModelError
from fprt.io import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file
from fprt.modelmeta import ModelMeta

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.csv"
STATE_DIR = "state"
META_KEY = "fprt.meta"


# ---------------------------------------------------------------------------------------------- tensors
def _plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save

    return atomic_write_bytes(path, canonical_safetensors(save(_plain_tensors(tensors), metadata=metadata)))


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` with its header's ``__metadata__`` keys sorted, so equal tensors and metadata give equal bytes.

    The safetensors writer emits the metadata from a hash map, in an order that changes from process to
    process; the tensors, their order and offsets are already deterministic and stay as they are.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header["__metadata__"].items())),
                  **{k: v for k, v in header.items() if k != "__metadata__"}}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to 8-byte alignment
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except FileNotFoundError:
        raise ModelError(f"{path}: no such checkpoint file") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt/foreign files
        raise ModelError(f"{path}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})") from exc
    return tensors, metadata


def save_weights(path: Path, model: torch.nn.Module, meta: ModelMeta | None = None) -> Path:
    metadata = {"format": "pt", "fprt.format": "fprt-checkpoint-1"}
    if meta is not None:
        metadata[META_KEY] = meta.to_json()
    return save_tensors(path, model.state_dict(), metadata)


# ---------------------------------------------------------------------------------------------- optimizer
def optimizer_state_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's ``state_dict`` as safetensors-able tensors plus a JSON-able rest (no pickle)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    tuple_keys = sorted({k for g in sd["param_groups"] for k, v in g.items() if isinstance(v, tuple)})
    return tensors, {"param_groups": groups, "scalars": scalars, "tuple_keys": tuple_keys}


def optimizer_state_from_tensors(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, entry in info.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entry)
    tuple_keys = set(info.get("tuple_keys", []))
    groups = [{k: (tuple(v) if k in tuple_keys else v) for k, v in g.items()} for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------------------------------- run folder
_STATE_FIELDS = {"epoch": int, "bad_epochs": int, "stopped_early": bool, "history": list}


def _check_state_shape(path: Path, state: Any) -> None:
    """``ModelError`` naming ``path`` unless it holds the resume state ``save_state`` writes."""
    wrong = [] if isinstance(state, dict) else [f"a JSON object, got {type(state).__name__}"]
    if not wrong:
        wrong = [f"{k!r} ({t.__name__})" for k, t in _STATE_FIELDS.items()
                 if not isinstance(state.get(k), t) or (t is int and isinstance(state.get(k), bool))]
        if not wrong and state["epoch"] < 0:
            wrong = ["'epoch' >= 0"]
    if wrong:
        raise ModelError(f"{path}: not an fprt resume state (expected {', '.join(wrong)}); "
                         "delete the run folder's state and start a new --out")


class RunFolder:
    """Paths and writers of one training run."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.weights = self.root / WEIGHTS
        self.config = self.root / CONFIG
        self.metrics = self.root / METRICS
        self.plots = self.root / "plots"
        self.state_dir = self.root / STATE_DIR
        self.last = self.state_dir / "last.safetensors"
        self.optimizer = self.state_dir / "optimizer.safetensors"
        self.state = self.state_dir / "state.json"

    def has_state(self) -> bool:
        return self.state.exists()

    def is_started(self) -> bool:
        return self.has_state() or self.weights.exists() or self.config.exists()

    # resume state -----------------------------------------------------------------------------
    def save_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, state: dict[str, Any]) -> None:
        """Write the state of a finished epoch; ``state.json`` goes last, so a crash leaves the previous epoch's."""
        save_tensors(self.last, model.state_dict(), {"format": "pt"})
        info = None
        if optimizer is not None:
            tensors, info = optimizer_state_to_tensors(optimizer)
            save_tensors(self.optimizer, tensors, {"format": "pt"})
        atomic_write_json(self.state, {**state, "optimizer": info})

    def load_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        try:
            state = json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.state}: cannot read the resume state ({exc})") from exc
        _check_state_shape(self.state, state)
        tensors, _ = load_tensors(self.last)
        _load_strict(model, tensors, self.last)
        if optimizer is not None and state.get("optimizer") is not None:
            opt_tensors, _ = load_tensors(self.optimizer)
            optimizer.load_state_dict(optimizer_state_from_tensors(opt_tensors, state["optimizer"]))
        return state

    # outputs ----------------------------------------------------------------------------------
    def save_model(self, model: torch.nn.Module, meta: ModelMeta, config: dict[str, Any]) -> ModelMeta:
        """Write ``model.safetensors`` (carrying ``meta``) then ``config.json`` with the weights' hash."""
        meta.checkpoint_sha256 = None
        save_weights(self.weights, model, meta)
        meta.checkpoint_sha256 = sha256_file(self.weights)
        self.write_config({**config, "meta": meta.to_dict()})
        return meta

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config, config)

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{self.root}: no {CONFIG}; not an fprt training run") from None
        except ValueError as exc:
            raise ModelError(f"{self.config}: corrupt JSON ({exc})") from exc

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        if not history:
            return
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        atomic_write_text(self.metrics, buf.getvalue())


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _load_strict(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    mismatched = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        if mismatched:
            parts.append(f"shape mismatch {[(k, tuple(tensors[k].shape), tuple(own[k].shape)) for k in mismatched[:3]]}")
        raise ModelError(f"{source}: weights do not fit the model its metadata names: " + "; ".join(parts))
    model.load_state_dict(tensors, strict=True)


# ---------------------------------------------------------------------------------------------- loading
def resolve_weights(path: str | Path) -> Path:
    """The ``.safetensors`` file of a run folder or checkpoint path."""
    path = Path(path)
    if path.is_dir():
        weights = path / WEIGHTS
        if not weights.exists():
            run = RunFolder(path)
            if run.has_state():
                raise ModelError(f"{path}: the run has no validated model yet (no {WEIGHTS}); resume it with --resume")
            raise ModelError(f"{path}: no {WEIGHTS} in this folder; not an fprt training run")
        return weights
    if not path.exists():
        raise ModelError(f"{path}: no such training run folder or checkpoint")
    if path.suffix != ".safetensors":
        raise ModelError(f"{path}: a checkpoint is a run folder or a .safetensors file (fprt never unpickles .pt/.pth files)")
    return path


def read_meta(path: str | Path) -> ModelMeta:
    """The ModelMeta a checkpoint carries (``checkpoint_sha256`` filled in), without building the model."""
    weights = resolve_weights(path)
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
    except Exception as exc:
        raise ModelError(f"{weights}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})") from exc
    return _meta_from(weights, metadata)


def _meta_from(weights: Path, metadata: dict[str, str]) -> ModelMeta:
    text = metadata.get(META_KEY)
    if text is None:
        config = weights.parent / CONFIG
        if config.exists():
            try:
                text = json.dumps(json.loads(config.read_text(encoding="utf-8"))["meta"])
            except (ValueError, KeyError) as exc:
                raise ModelError(f"{config}: no readable 'meta' entry ({exc})") from exc
        else:
            raise ModelError(f"{weights}: carries no '{META_KEY}' metadata and has no {CONFIG} beside it; not an fprt checkpoint")
    try:
        meta = ModelMeta.from_json(text)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{weights}: corrupt '{META_KEY}' metadata ({exc})") from exc
    meta.checkpoint_sha256 = sha256_file(weights)
    return meta


def load_checkpoint(path: str | Path):
    """``(model, meta)`` from a run folder or its ``.safetensors``: the model in eval mode on the CPU."""
    from fprt.trainer.models import create_model

    weights = resolve_weights(path)
    tensors, metadata = load_tensors(weights)
    meta = _meta_from(weights, metadata)
    try:
        model = create_model(meta.model, **meta.model_kwargs)
    except ModelError as exc:
        raise ModelError(f"{weights}: cannot rebuild its model: {exc}") from exc
    _load_strict(model, tensors, weights)
    model.eval()
    return model, meta
