"""``fprt checks``: what this machine offers fprt. Reads, never installs anything."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Check:
    name: str
    status: str  # "ok" | "missing" | "info" | "error"
    detail: str


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch_checks() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # torch missing or broken: say so, do not crash the report
        return [Check("torch", "missing", f"{type(exc).__name__}: {exc}")]
    out = [Check("torch", "ok", f"{torch.__version__} (CUDA build: {torch.version.cuda or 'none'})")]
    if torch.cuda.is_available():
        gpus = [
            f"{torch.cuda.get_device_name(i)} (sm_{''.join(map(str, torch.cuda.get_device_capability(i)))})"
            for i in range(torch.cuda.device_count())
        ]
        out.append(Check("GPU", "ok", ", ".join(gpus)))
    else:
        out.append(Check("GPU", "missing", "torch.cuda.is_available() is False: CPU only"))
    out.append(Check("CPU threads", "info", f"torch intra-op threads: {torch.get_num_threads()}"))
    return out


def _nvcc_check() -> Check:
    import os
    import sys as _sys
    from pathlib import Path

    cpp_ext = Path(__file__).resolve().parent.parent / "cpp_ext"
    cuda_home = None
    if (cpp_ext / "build_config.py").exists():
        _sys.path.insert(0, str(cpp_ext))
        try:
            import build_config

            cuda_home = build_config.find_cuda_home()
        finally:
            _sys.path.remove(str(cpp_ext))
    nvcc = str(cuda_home / "bin" / "nvcc") if cuda_home else shutil.which("nvcc")
    if not nvcc:
        return Check("nvcc", "missing", "no CUDA toolkit on PATH or in $CUDA_HOME (needed only to build the CUDA extension)")
    try:
        text = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=30).stdout
        release = next((line.strip() for line in text.splitlines() if "release" in line), text.strip())
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("nvcc", "error", f"{nvcc}: {exc}")
    home = f"; CUDA_HOME={cuda_home}" if cuda_home else ""
    env = "" if os.environ.get("CUDA_HOME") else " (CUDA_HOME not set; found from nvcc)"
    return Check("nvcc", "ok", f"{release}{home}{env if cuda_home else ''}")


def _onnxruntime_check() -> Check:
    try:
        import onnxruntime as ort
    except Exception as exc:
        return Check("onnxruntime", "missing", f"{type(exc).__name__}: {exc}")
    return Check("onnxruntime", "ok", f"{ort.__version__}; providers: {', '.join(ort.get_available_providers())}")


def _tensorrt_check() -> Check:
    try:
        import tensorrt as trt
    except Exception as exc:
        return Check(
            "TensorRT", "missing", f"not importable ({type(exc).__name__}); install the [gpu] extra on a machine with a GPU"
        )
    return Check("TensorRT", "ok", str(trt.__version__))


def _extension_checks() -> list[Check]:
    try:
        from fprt.runtime import similarity
    except Exception as exc:
        return [Check("similarity extension", "error", f"fprt.runtime.similarity failed to import: {exc}")]
    describe = getattr(similarity, "extension_status", None)
    if describe is None:
        return [Check("similarity extension", "missing", "fprt.runtime.similarity has no extension_status()")]
    return [Check(f"similarity extension ({dev})", status, detail) for dev, status, detail in describe()]


def _cpu_kernel_check() -> Check:
    """Which CPU code path PyTorch's kernels take (README "Same numbers on every CPU"; make demo pins AVX2)."""
    import os

    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception as exc:  # torch missing or too old: reported by the torch check already
        return Check("CPU kernels", "info", f"unknown ({type(exc).__name__})")
    pins = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")
            if os.environ.get(k)]
    return Check("CPU kernels", "info", f"ATen dispatch {capability}; " + (", ".join(pins) if pins else "not pinned"))


def _optional(dist: str, purpose: str) -> Check:
    version = _version(dist)
    return Check(dist, "ok" if version else "missing", version or f"not installed ({purpose})")


def run_checks() -> list[Check]:
    """Everything ``fprt checks`` reports, as data."""
    from fprt import __version__

    checks = [
        Check("fprt", "info", __version__),
        Check("Python", "info", f"{sys.version.split()[0]} on {platform.system()} {platform.machine()}"),
    ]
    checks += _torch_checks()
    checks.append(_cpu_kernel_check())
    checks.append(_nvcc_check())
    checks.append(_onnxruntime_check())
    checks.append(_tensorrt_check())
    checks += _extension_checks()
    checks.append(_optional("pywuffs", "the fast 8-bit gray PNG decoder; without it OpenCV decodes them, the same pixels"))
    checks.append(_optional("faiss-cpu", "reference for tests and benchmarks: the [dev] extra"))
    checks.append(_optional("ray", "`fprt score --ray`: the [ray] extra"))
    return checks


def print_checks(checks: list[Check]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colours = {"ok": "green", "missing": "yellow", "error": "red", "info": "cyan"}
    table = Table(title="fprt checks", show_lines=False)
    table.add_column("component")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(escape(check.name), f"[{colours[check.status]}]{check.status}[/]", escape(check.detail))
    Console().print(table)
