"""Finding, validating and (re)building fprt's compiled similarity extensions.

The op-builder pattern (StyleGAN2-ADA's ``custom_ops``, DeepSpeed's op builders):

1. the prebuilt module (``fprt._similarity_cpu`` / ``fprt._similarity_cuda``, built by setup.py) is
   imported and checked against this process: the torch version compiled into it must equal the
   running torch's, and, when the sources are at hand (a source checkout / editable install), its
   source hash must equal the sources' (``cpp_ext/build_config.py: source_hash``);
2. otherwise, when the sources and a compiler are at hand, it is built just in time with
   ``torch.utils.cpp_extension.load`` into a content-addressed cache folder named by the source hash
   and the torch version (``$FPRT_EXT_CACHE``, else ``$FPRT_CACHE_DIR/extensions``, else ``~/.cache/fprt/extensions``) - built once,
   reused by every later process; ``FPRT_JIT=0`` turns this off;
3. otherwise the caller uses the pure-PyTorch fallback (same results, slower), with one warning.

``status()`` reports what would happen without building anything (``fprt checks`` calls it).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

_MODULES = {"cpu": "fprt._similarity_cpu", "cuda": "fprt._similarity_cuda"}
_LOCK = threading.Lock()
_LOADED: dict[str, Loaded] = {}


@dataclass(frozen=True)
class Loaded:
    """Outcome of loading one extension: ``module`` is None when the fallback must be used."""

    kind: str  # "cpu" | "cuda"
    module: ModuleType | None
    status: str  # "ok" | "missing" | "error"
    detail: str


def cpp_ext_dir() -> Path | None:
    """The cpp_ext/ source folder next to the package (source checkouts and editable installs), else None."""
    candidate = Path(__file__).resolve().parent.parent / "cpp_ext"
    return candidate if (candidate / "build_config.py").exists() else None


def build_config() -> ModuleType | None:
    """cpp_ext/build_config.py loaded by path (it is not part of the installed package), or None."""
    folder = cpp_ext_dir()
    if folder is None:
        return None
    cached = sys.modules.get("fprt_cpp_ext_build_config")
    if cached is not None:
        return cached
    spec = importlib.util.spec_from_file_location("fprt_cpp_ext_build_config", folder / "build_config.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def cache_dir() -> Path:
    root = os.environ.get("FPRT_EXT_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("FPRT_CACHE_DIR")  # fprt's one cache root (embeddings/, engines/, extensions/)
    return Path(base) / "extensions" if base else Path.home() / ".cache" / "fprt" / "extensions"


def _jit_name(kind: str, source_hash: str) -> str:
    return f"fprt_similarity_{kind}_{source_hash}_torch{_torch_version().replace('.', '_')}"


def _validate(kind: str, module: ModuleType) -> str | None:
    """None when the module fits this process, else why not."""
    try:
        info = dict(module.build_info())
    except Exception as exc:  # a foreign or broken module
        return f"{module.__name__} has no usable build_info(): {exc}"
    if info.get("torch_version") != _torch_version():
        return f"built for torch {info.get('torch_version')}, this process runs torch {_torch_version()}"
    if kind == "cuda":
        import torch

        if torch.version.cuda and info.get("cuda_version") and info["cuda_version"] != torch.version.cuda:
            return f"built with CUDA {info['cuda_version']}, torch uses CUDA {torch.version.cuda}"
    config = build_config()
    if config is not None:
        expected = config.source_hash(kind)
        if info.get("source_hash") != expected:
            return f"built from other sources (hash {info.get('source_hash')}, sources now {expected})"
    return None


def _import_prebuilt(kind: str) -> tuple[ModuleType | None, str]:
    import torch  # noqa: F401  (loads libc10 / libtorch, which the extension links against)

    try:
        module = importlib.import_module(_MODULES[kind])
    except ImportError as exc:
        return None, f"{_MODULES[kind]} is not importable ({exc})"
    except OSError as exc:  # e.g. a missing shared library
        return None, f"{_MODULES[kind]} failed to load ({exc})"
    problem = _validate(kind, module)
    if problem is not None:
        return None, f"{_MODULES[kind]} at {getattr(module, '__file__', '?')}: {problem}"
    return module, f"{_MODULES[kind]} at {module.__file__}"


def _jit_sources(kind: str):
    config = build_config()
    if config is None:
        return None, None, "the C++ sources (cpp_ext/) are not installed with this copy of fprt"
    if os.environ.get("FPRT_JIT", "1") == "0":
        return None, None, "just-in-time builds are turned off (FPRT_JIT=0)"
    return config, config.source_hash(kind), None


def _import_cached(kind: str, name: str, folder: Path) -> ModuleType | None:
    """Import a module built earlier into the cache, if there is one."""
    import torch  # noqa: F401

    built = sorted(folder.glob(f"{name}*.so"))
    if not built:
        return None
    spec = importlib.util.spec_from_file_location(name, built[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module if _validate(kind, module) is None else None


def _jit_build(kind: str, config: ModuleType, source_hash: str) -> ModuleType:
    from torch.utils import cpp_extension

    name = _jit_name(kind, source_hash)
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    cached = _import_cached(kind, name, folder)
    if cached is not None:
        return cached
    sources = [str(p) for p in (config.cpu_sources() if kind == "cpu" else config.cuda_sources())]
    include = [str(config.INCLUDE_DIR)]
    if kind == "cpu":
        return cpp_extension.load(
            name=name,
            sources=sources,
            extra_include_paths=include,
            extra_cflags=config.CXX_FLAGS + config.CPU_OPENMP_FLAGS + [config.hash_define("cpu")],
            extra_ldflags=config.CPU_OPENMP_FLAGS,
            build_directory=str(folder),
            verbose=False,
        )
    home = config.find_cuda_home()
    if home is None:
        raise RuntimeError("no CUDA toolkit (nvcc) found")
    os.environ.setdefault("CUDA_HOME", str(home))
    os.environ["TORCH_CUDA_ARCH_LIST"] = config.cuda_arch_list()
    cpp_extension.CUDA_HOME = str(home)
    inc, libdirs, link = config.cuda_library_paths(home)
    return cpp_extension.load(
        name=name,
        sources=sources,
        extra_include_paths=include + inc,
        extra_cflags=config.CXX_FLAGS + config.cuda_defines(),
        extra_cuda_cflags=config.NVCC_FLAGS + config.cuda_defines(),
        extra_ldflags=[f"-L{d}" for d in libdirs] + link,
        build_directory=str(folder),
        verbose=False,
    )


def load(kind: str) -> Loaded:
    """The extension for ``kind`` ("cpu" or "cuda"): prebuilt, else just-in-time built, else None (fallback)."""
    with _LOCK:
        if kind in _LOADED:
            return _LOADED[kind]
        module, detail = _import_prebuilt(kind)
        if module is not None:
            result = Loaded(kind, module, "ok", detail)
        else:
            config, source_hash, why_not = _jit_sources(kind)
            if config is None:
                result = Loaded(kind, None, "missing", f"{detail}; {why_not}")
            else:
                try:
                    built = _jit_build(kind, config, source_hash)
                    result = Loaded(kind, built, "ok", f"built just in time into {built.__file__} ({detail})")
                except Exception as exc:  # compiler missing, build error: fall back, say why
                    result = Loaded(kind, None, "error", f"{detail}; the just-in-time build failed: {exc}")
        _LOADED[kind] = result
        return result


def status(kind: str) -> tuple[str, str]:
    """(status, detail) for ``fprt checks`` without building anything."""
    with _LOCK:
        if kind in _LOADED:
            loaded = _LOADED[kind]
            return loaded.status, loaded.detail
    module, detail = _import_prebuilt(kind)
    if module is not None:
        info = dict(module.build_info())
        extra = f"; targets {info['archs'].replace('_', ';')}" if info.get("archs") else ""
        return "ok", f"{detail} (torch {info.get('torch_version')}, sources {info.get('source_hash')}{extra})"
    config, source_hash, why_not = _jit_sources(kind)
    if config is None:
        return "missing", f"{detail}; {why_not}: the pure-PyTorch fallback is used"
    name = _jit_name(kind, source_hash)
    folder = cache_dir() / name
    try:
        cached = _import_cached(kind, name, folder) if folder.exists() else None
    except Exception:
        cached = None
    if cached is not None:
        return "ok", f"just-in-time build {cached.__file__}"
    return "missing", f"{detail}; first use builds it just in time into {folder} (else the pure-PyTorch fallback)"
