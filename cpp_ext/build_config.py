"""Sources and compiler flags of fprt's similarity extension, in one place.

Used by ``setup.py`` (ahead-of-time build) and by the just-in-time builder in
``fprt.runtime`` (rebuild into a content-hashed cache when the prebuilt module does not match
the torch in the process). Plain Python with no imports beyond the standard library at module
level, so setup.py can load it before anything is installed.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

CPP_EXT_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = CPP_EXT_DIR / "include"
CPU_MODULE = "fprt._similarity_cpu"
CUDA_MODULE = "fprt._similarity_cuda"
DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"

CXX_FLAGS = ["-O3", "-std=c++17"]
NVCC_FLAGS = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-lineinfo"]


def cpu_sources() -> list[Path]:
    return sorted((CPP_EXT_DIR / "csrc").glob("*.cpp"))


def cuda_sources() -> list[Path]:
    return sorted((CPP_EXT_DIR / "csrc" / "cuda").glob("*.cu")) + sorted((CPP_EXT_DIR / "csrc" / "cuda").glob("*.cpp"))


def find_cuda_home() -> Path | None:
    """The CUDA toolkit folder: ``$CUDA_HOME``, else resolved from ``nvcc`` on PATH.

    ``nvcc`` may be a wrapper script (``exec /usr/local/cuda-13.0/bin/nvcc "$@"``); the folder it
    calls is read out of it, because linking needs the real toolkit's ``lib64``.
    """
    env = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if env and (Path(env) / "bin" / "nvcc").exists():
        return Path(env)
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        for guess in sorted(Path("/usr/local").glob("cuda*"), reverse=True):
            if (guess / "bin" / "nvcc").exists():
                return guess
        return None
    nvcc_path = Path(nvcc).resolve()
    try:
        head = nvcc_path.read_bytes()[:4096]
    except OSError:
        head = b""
    if head.startswith(b"#!"):
        match = re.search(rb"(/\S+)/bin/nvcc", head)
        if match and (Path(match.group(1).decode()) / "bin" / "nvcc").exists():
            return Path(match.group(1).decode())
    return nvcc_path.parent.parent


def extensions(root: Path) -> list:
    """The setuptools extensions to build: the CPU one always, the CUDA one when a toolkit is found."""
    from torch.utils.cpp_extension import CppExtension

    def rel(paths):
        return [str(p.relative_to(root)) for p in paths]

    exts = []
    if cpu_sources():
        exts.append(
            CppExtension(
                CPU_MODULE,
                sources=rel(cpu_sources()),
                include_dirs=[str(INCLUDE_DIR)],
                extra_compile_args={"cxx": CXX_FLAGS},
            )
        )
    if cuda_sources() and os.environ.get("FPRT_BUILD_CUDA", "1") != "0":
        cuda_home = find_cuda_home()
        if cuda_home is None:
            print("fprt setup: no CUDA toolkit found (nvcc); building the CPU extension only")
        else:
            os.environ["CUDA_HOME"] = str(cuda_home)
            os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
            import torch.utils.cpp_extension as cpp_extension

            cpp_extension.CUDA_HOME = str(cuda_home)  # read at import time; keep it in step
            exts.append(
                cpp_extension.CUDAExtension(
                    CUDA_MODULE,
                    sources=rel(cuda_sources()),
                    include_dirs=[str(INCLUDE_DIR)],
                    extra_compile_args={"cxx": CXX_FLAGS, "nvcc": NVCC_FLAGS},
                )
            )
    return exts
