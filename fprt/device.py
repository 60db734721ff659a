"""``--device auto``: the GPU when the chosen backend can use one here, else the CPU."""

from __future__ import annotations

import logging

log = logging.getLogger("fprt")


def cuda_usable(backend: str = "torch") -> tuple[bool, str]:
    """Whether ``backend`` (torch, onnx or tensorrt) can run on a GPU on this machine, and why not."""
    try:
        import torch
    except ImportError as exc:
        return False, f"torch is not importable ({exc})"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees no CUDA device"
    if backend == "onnx":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return False, "ONNX Runtime has no CUDAExecutionProvider (install fprt[gpu]; see README 'GPU use')"
    if backend == "tensorrt":
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            return False, "TensorRT is not installed (fprt[gpu])"
    return True, ""


def resolve_device(device: str, backend: str = "torch") -> str:
    """``auto`` → ``cuda`` when ``backend`` can use the GPU here, else ``cpu`` (said at -v); other names pass through."""
    if str(device) != "auto":
        return str(device)
    usable, why = cuda_usable(backend)
    if usable:
        log.info("--device auto: cuda")
        return "cuda"
    log.info("--device auto: cpu (%s)", why)
    return "cpu"
