"""The one table of model formats, shared by ``fprt export-onnx``, ``fprt score`` and ``fprt bench``.

Each row says how a model file is recognised (suffix), where it runs (CPU / GPU), which precisions
it can hold and which runtime backend serves it. Export checks its options against the table,
score picks a backend from a model file's suffix, and bench loops over it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]
    cpu: bool
    gpu: bool
    precisions: tuple[str, ...]
    backend: str  # "module:Class", imported lazily by fprt.runtime
    description: str


FORMATS: tuple[Format, ...] = (
    Format(
        "torch",
        (".safetensors",),
        cpu=True,
        gpu=True,
        precisions=("fp32", "fp16", "bf16"),
        backend="fprt.runtime.backends.torch_backend:TorchBackend",
        description="a training run folder or its .safetensors checkpoint, run in PyTorch eager",
    ),
    Format(
        "onnx",
        (".onnx",),
        cpu=True,
        gpu=True,
        precisions=("fp32", "fp16", "int8"),
        backend="fprt.runtime.backends.onnx_backend:OnnxBackend",
        description="ONNX Runtime: CPU EP by default, CUDA / TensorRT EP with onnxruntime-gpu",
    ),
    Format(
        "tensorrt",
        (".plan", ".engine"),
        cpu=False,
        gpu=True,
        precisions=("fp32", "fp16"),
        backend="fprt.runtime.backends.tensorrt_backend:TensorRTBackend",
        description="a serialized TensorRT engine built by `fprt build-engine` (GPU only)",
    ),
)


def get_format(name: str) -> Format:
    """The format called ``name`` (case-insensitive); a "did you mean" error otherwise."""
    key = name.strip().lower()
    aliases = {"pytorch": "torch", "pt": "torch", "ort": "onnx", "onnxruntime": "onnx", "trt": "tensorrt", "engine": "tensorrt", "plan": "tensorrt"}
    key = aliases.get(key, key)
    for fmt in FORMATS:
        if fmt.name == key:
            return fmt
    from fprt.errors import FprtError

    names = [f.name for f in FORMATS]
    close = difflib.get_close_matches(key, names + list(aliases), n=1)
    hint = f" Did you mean {aliases.get(close[0], close[0])!r}?" if close else ""
    raise FprtError(f"unknown model format {name!r}; expected one of {names}.{hint}")


def format_for_path(path: str | Path) -> Format:
    """Pick the format of a model file from its suffix; a folder is a training run (torch)."""
    path = Path(path)
    if path.is_dir():
        return get_format("torch")
    suffix = path.suffix.lower()
    for fmt in FORMATS:
        if suffix in fmt.suffixes:
            return fmt
    from fprt.errors import ModelError

    known = sorted(s for f in FORMATS for s in f.suffixes)
    raise ModelError(f"{path}: cannot tell the model format from suffix {suffix!r}; expected a run folder or one of {known}")
