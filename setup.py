"""Install fprt: one Python package, ``fprt``, assembled from the repository's top-level folders.

    fprt/      → fprt            (the shared core: data, demo data, preprocess, metrics, CLI)
    trainer/   → fprt.trainer
    export/    → fprt.export
    runtime/   → fprt.runtime
    cpp_ext/   → fprt._similarity_cpu (C++), fprt._similarity_cuda (CUDA, built when nvcc is found)

The extensions are built with torch's cpp_extension, so install with torch already present and
without build isolation (``make test`` / ``make demo`` do this):

    pip install torch==2.14.1 torchvision==0.29.1
    pip install --no-build-isolation -e '.[dev]'

Without torch at build time, or with ``FPRT_BUILD_EXT=0``, fprt installs without its extension and
builds it just in time on first use (or falls back to pure PyTorch with one warning).
``FPRT_BUILD_CUDA=0`` skips the CUDA extension; ``TORCH_CUDA_ARCH_LIST`` picks its GPU targets
(default ``8.0;9.0+PTX``).

ONNX Runtime comes as one of two packages that own the same ``onnxruntime`` module: ``onnxruntime`` (CPU) or
``onnxruntime-gpu`` (CPU + CUDA). Installed side by side, whichever was installed last wins file by file and
the CUDA provider can vanish, so fprt requires exactly one: ``onnxruntime`` by default, ``onnxruntime-gpu``
when ``FPRT_ONNXRUNTIME=gpu`` is set at install time (``make install-gpu`` does this, after removing the CPU
package). The ``[gpu]`` extra adds TensorRT.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "cpp_ext"))
import build_config  # noqa: E402  (cpp_ext/build_config.py: one place for sources and flags)

FOLDERS = {"fprt": "fprt", "fprt.trainer": "trainer", "fprt.export": "export", "fprt.runtime": "runtime"}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in FOLDERS.items():
        packages.append(name)
        package_dir[name] = folder
        packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]
    return packages, package_dir


def _version() -> str:
    for line in (HERE / "fprt" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("fprt/__init__.py has no __version__")


def _extensions() -> tuple[list, dict]:
    if os.environ.get("FPRT_BUILD_EXT", "1") == "0":
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension
    except ImportError:
        print("fprt setup: torch is not installed; building without the similarity extension", file=sys.stderr)
        return [], {}
    exts = build_config.extensions(HERE)
    return exts, ({"build_ext": BuildExtension.with_options(use_ninja=True)} if exts else {})


def _onnxruntime() -> str:
    """The ONNX Runtime distribution to require: one, never both (see the module docstring)."""
    choice = os.environ.get("FPRT_ONNXRUNTIME", "cpu").strip().lower()
    if choice not in ("cpu", "gpu"):
        raise SystemExit(f"fprt setup: FPRT_ONNXRUNTIME={choice!r}: expected cpu or gpu")
    return "onnxruntime-gpu>=1.18" if choice == "gpu" else "onnxruntime>=1.18"


packages, package_dir = _packages()
ext_modules, cmdclass = _extensions()

setup(
    name="fprt",
    version=_version(),
    description="fprt, the fingerprint runtime: audits synthetic medical images for traces of their training images",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=packages,
    package_dir=package_dir,
    package_data={"fprt": ["py.typed"], "fprt.runtime.report": ["templates/*.j2"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "onnx>=1.16",
        "onnxscript>=0.2",  # torch.onnx's dynamo exporter
        _onnxruntime(),
        "numpy>=1.24",
        "pillow>=10.0",
        "scikit-learn>=1.3",
        "threadpoolctl>=3.1",  # fprt.demo caps BLAS threads in its worker processes
        "scipy>=1.11",  # pHash (DCT), SSIM filters
        "scikit-image>=0.22",  # evidence: registration, SSIM
        "opencv-python-headless>=4.8",  # evidence: feature matching, warps
        "pywuffs>=2.0",  # decode: Wuffs for 8-bit gray PNGs (faster than libpng, the same pixels)
        "Jinja2>=3.1",  # fprt report (HTML)
        "matplotlib>=3.7",
        "tqdm>=4.66",
        "rich>=13.0",
        "typer>=0.12",
        "safetensors>=0.4",
        "pydicom>=2.4",
    ],
    extras_require={
        "gpu": ["tensorrt>=10.0"],  # with FPRT_ONNXRUNTIME=gpu for ONNX Runtime's CUDA provider (make install-gpu)
        "ray": ["ray[data]>=2.30", "pyarrow>=14"],  # pyarrow: imported by fprt.runtime.distributed
        "dev": [
            "pytest>=8.0",
            "pytest-benchmark>=4.0",
            "pytest-timeout>=2.2",
            "faiss-cpu>=1.8",
            "selenium>=4.15",  # the report's browser test (needs chromium + chromedriver)
            "ninja>=1.11",
        ],
    },
    entry_points={"console_scripts": ["fprt = fprt.cli:main"]},
    zip_safe=False,
)
