"""Sources and compiler flags of fprt's similarity extension, in one place.

Used by ``setup.py`` (ahead-of-time build) and by the just-in-time builder in
``fprt.runtime`` (rebuild into a content-hashed cache when the prebuilt module does not match
the torch in the process). Plain Python with no imports beyond the standard library at module
level, so setup.py can load it before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

CPP_EXT_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = CPP_EXT_DIR / "include"
CPU_MODULE = "fprt._similarity_cpu"
CUDA_MODULE = "fprt._similarity_cuda"
DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"

# torch 2.14's headers need C++20. -ffp-contract=off: no fused multiply-add in host code, so the exact
# float64 keys (fprt_sim/epilogue.h) have the same bits on CPU and GPU; -fno-math-errno lets sqrt vectorise.
CXX_FLAGS = ["-O3", "-std=c++20", "-ffp-contract=off", "-fno-math-errno"]
# The CPU module parallelises with at::parallel_for, which for torch's OpenMP backend is a header template
# around `#pragma omp parallel`: without -fopenmp it silently runs on one thread. Linking -fopenmp adds a
# libgomp.so.1 dependency that resolves to the copy torch has already loaded (same soname): one pool.
CPU_OPENMP_FLAGS = ["-fopenmp"]
# The .cu holds only kernels (no torch headers). --threads 2 compiles the GPU targets in parallel;
# -Xfatbin -compress-all keeps the module small.
NVCC_FLAGS = [
    "-O3",
    "-std=c++20",
    "--expt-relaxed-constexpr",
    "-lineinfo",
    "-Xfatbin",
    "-compress-all",
    "--threads",
    "2",
    "-Xcompiler",
    "-ffp-contract=off",
]


def cpu_sources() -> list[Path]:
    return sorted((CPP_EXT_DIR / "csrc").glob("*.cpp"))


def cuda_sources() -> list[Path]:
    return sorted((CPP_EXT_DIR / "csrc" / "cuda").glob("*.cu")) + sorted((CPP_EXT_DIR / "csrc" / "cuda").glob("*.cpp"))


def _sources_for_hash(kind: str) -> list[Path]:
    headers = sorted(INCLUDE_DIR.rglob("*.h"))
    return headers + (cpu_sources() if kind == "cpu" else cuda_sources())


def source_hash(kind: str) -> str:
    """Content hash of everything a module is built from (sources, headers, flags): ``kind`` is "cpu" or "cuda".

    Compiled into the module (``build_info()["source_hash"]``) and used to name just-in-time builds, so a
    module built from other sources or flags is never mistaken for the current one.
    """
    digest = hashlib.sha256()
    for path in _sources_for_hash(kind):
        digest.update(path.relative_to(CPP_EXT_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(" ".join(CXX_FLAGS + CPU_OPENMP_FLAGS if kind == "cpu" else CXX_FLAGS + NVCC_FLAGS).encode())
    if kind == "cuda":
        digest.update(cuda_arch_list().encode())
    return digest.hexdigest()[:16]


def hash_define(kind: str) -> str:
    """The -D flag carrying the source hash (stringified in C++; the leading 'h' keeps it one token)."""
    return f"-DFPRT_SOURCE_HASH=h{source_hash(kind)}"


def cuda_arch_list() -> str:
    return os.environ.get("TORCH_CUDA_ARCH_LIST") or DEFAULT_CUDA_ARCHS


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


def cuda_library_paths(cuda_home: Path) -> tuple[list[str], list[str], list[str]]:
    """(include dirs, library dirs, link args) for cuBLAS.

    A bare toolkit (nvcc + cudart only, as on these machines) lacks cuBLAS: then the headers and
    ``libcublas.so.N`` come from the ``nvidia-*`` wheels torch itself depends on (site-packages/nvidia/cuN),
    the same build torch loads at run time.
    """
    if (cuda_home / "include" / "cublas_v2.h").exists() and any((cuda_home / d / "libcublas.so").exists() for d in ("lib64", "lib")):
        return [], [], ["-lcublas"]
    import torch

    major = (torch.version.cuda or "").split(".")[0]
    wheel = Path(torch.__file__).resolve().parent.parent / "nvidia" / f"cu{major}"
    libs = sorted((wheel / "lib").glob("libcublas.so*"))
    if not (wheel / "include" / "cublas_v2.h").exists() or not libs:
        raise RuntimeError(f"cuBLAS not found in {cuda_home} nor in {wheel}; install the CUDA toolkit's cuBLAS")
    return [str(wheel / "include")], [str(wheel / "lib")], [f"-l:{libs[0].name}"]


def cuda_defines() -> list[str]:
    archs = re.sub(r"[^0-9A-Za-z.+]+", "_", cuda_arch_list())
    return [hash_define("cuda"), f"-DFPRT_CUDA_ARCHS={archs}"]


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
                extra_compile_args={"cxx": CXX_FLAGS + CPU_OPENMP_FLAGS + [hash_define("cpu")]},
                extra_link_args=CPU_OPENMP_FLAGS,
            )
        )
    if cuda_sources() and os.environ.get("FPRT_BUILD_CUDA", "1") != "0":
        cuda_home = find_cuda_home()
        if cuda_home is None:
            print("fprt setup: no CUDA toolkit found (nvcc); building the CPU extension only")
        else:
            os.environ["CUDA_HOME"] = str(cuda_home)
            os.environ["TORCH_CUDA_ARCH_LIST"] = cuda_arch_list()
            import torch.utils.cpp_extension as cpp_extension

            cpp_extension.CUDA_HOME = str(cuda_home)  # read at import time; keep it in step
            inc, libdirs, link = cuda_library_paths(cuda_home)
            exts.append(
                cpp_extension.CUDAExtension(
                    CUDA_MODULE,
                    sources=rel(cuda_sources()),
                    include_dirs=[str(INCLUDE_DIR)] + inc,
                    library_dirs=libdirs,
                    extra_link_args=link,
                    extra_compile_args={"cxx": CXX_FLAGS + cuda_defines(), "nvcc": NVCC_FLAGS + cuda_defines()},
                )
            )
    return exts
