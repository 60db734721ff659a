"""`--device auto`: the GPU only when the backend can use one here; named devices pass through."""

from __future__ import annotations

import onnxruntime
import torch

from fprt.device import resolve_device


def test_auto_is_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("auto", "onnx") == "cpu"
    assert resolve_device("cuda") == "cuda" and resolve_device("cpu") == "cpu"


def test_auto_needs_the_backends_gpu_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "torch") == "cuda"
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert resolve_device("auto", "onnx") == "cpu"
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert resolve_device("auto", "onnx") == "cuda"


def test_checks_say_which_cpu_kernels_run(monkeypatch):
    from fprt.checks import _cpu_kernel_check

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    detail = _cpu_kernel_check().detail
    assert detail.startswith(f"ATen dispatch {torch.backends.cpu.get_cpu_capability()}") and "ONEDNN_MAX_CPU_ISA=AVX2" in detail
