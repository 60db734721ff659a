"""Runtime backends, one per model format, chosen from the model file by ``fprt.formats``.

    from fprt.runtime.backends import load_backend
    backend = load_backend("model.onnx")                 # ONNX Runtime, CPU
    backend = load_backend("runs/siamese", device="cuda") # PyTorch eager on the GPU
    backend = load_backend("model.onnx", backend="torch") # error: the file is not a torch run

``backend=`` (``--backend``) overrides the format read from the file; unknown names get a
"did you mean". ``BackendSpec`` is the picklable recipe (for worker processes and Ray actors).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fprt.runtime.backends.base import DEVICES, Backend, BackendSpec, check_device, physical_cores

__all__ = ["Backend", "BackendSpec", "DEVICES", "backend_class", "check_device", "load_backend", "physical_cores"]


def backend_class(format_name: str):
    """The Backend subclass the format table names for ``format_name``."""
    from fprt.formats import get_format

    fmt = get_format(format_name)
    module, _, cls = fmt.backend.partition(":")
    return getattr(importlib.import_module(module), cls)


def load_backend(
    model: str | Path,
    *,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    compile: bool = False,
    **options: Any,
) -> Backend:
    """Load ``model`` with the backend its format calls for (or ``backend``) on ``device``."""
    from fprt.errors import FprtError, ModelError
    from fprt.formats import format_for_path, get_format

    path = Path(model)
    device = check_device(device)
    if not path.exists():
        raise ModelError(f"{path}: no such model file or training run folder")
    fmt = get_format(backend) if backend else format_for_path(path)
    if backend:
        try:
            from_file = format_for_path(path)
        except ModelError:
            from_file = None
        if from_file is not None and from_file.name != fmt.name:
            raise FprtError(
                f"--backend {backend!r} cannot load {path}: that is a {from_file.name} model "
                f"({from_file.description}); drop --backend or pass --backend {from_file.name}"
            )
    if device == "cuda" and not fmt.gpu or device == "cpu" and not fmt.cpu:
        where = "the GPU" if fmt.gpu else "the CPU"
        raise FprtError(f"{path}: {fmt.name} models run on {where} only; --device {device} is not possible")
    cls = backend_class(fmt.name)
    kwargs: dict[str, Any] = {"device": device, "threads": threads, **options}
    if fmt.name == "torch":
        kwargs["compile"] = compile
    return cls(path, **kwargs)
