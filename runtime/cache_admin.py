"""``fprt cache info|clear``: what fprt's cache root holds, and removing it.

fprt keeps one cache root, ``$FPRT_CACHE_DIR`` (default ``~/.cache/fprt``, ``$XDG_CACHE_HOME`` honoured), with
one folder per part:

==============  ==========================================================================
part            what it holds (who writes it)
==============  ==========================================================================
embeddings      image × model embeddings of ``fprt score`` (``fprt.runtime.cache``)
engines         TensorRT engines per GPU / TensorRT version / ONNX hash (``fprt.export.engine_cache``)
bench           the models ``fprt bench`` exported (``fprt.runtime.bench``)
extensions      the similarity extension built just in time (``fprt.runtime.extension_loader``)
==============  ==========================================================================

Everything in it can be rebuilt: clearing costs time on the next run, never results. ``clear_cache`` only
ever deletes these named part folders under the root (never the root itself or anything else in it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fprt.errors import FprtError

PARTS = ("embeddings", "engines", "bench", "extensions")


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root: ``root``, else ``$FPRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/fprt`` or ``~/.cache/fprt``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("FPRT_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fprt"


def _usage(folder: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # a file removed while we look: it no longer counts
                continue
            files += 1
    return files, size


def cache_info(root: str | os.PathLike | None = None) -> dict:
    """``{"root", "exists", "parts": {part: {"path", "files", "bytes"}}, "files", "bytes"}`` of the cache root."""
    base = cache_root(root)
    if base.exists() and not base.is_dir():
        raise FprtError(f"cache root {base}: not a folder (check --cache / FPRT_CACHE_DIR)")
    parts = {}
    for part in PARTS:
        folder = base / part
        files, size = _usage(folder) if folder.is_dir() else (0, 0)
        parts[part] = {"path": str(folder), "files": files, "bytes": size}
    return {"root": str(base), "exists": base.is_dir(), "parts": parts,
            "files": sum(p["files"] for p in parts.values()), "bytes": sum(p["bytes"] for p in parts.values())}


def format_info(info: dict) -> str:
    lines = [f"cache root {info['root']}{'' if info['exists'] else ' (does not exist yet)'}"]
    for part, p in info["parts"].items():
        lines.append(f"  {part:<11} {p['files']:>8} files {p['bytes'] / 1e6:>10.1f} MB  {p['path']}")
    lines.append(f"  {'total':<11} {info['files']:>8} files {info['bytes'] / 1e6:>10.1f} MB   (fprt cache clear [PART] frees it)")
    return "\n".join(lines)


def clear_cache(root: str | os.PathLike | None = None, parts: list[str] | None = None) -> dict:
    """Delete the named part folders (default: every part) under the cache root; returns what was freed."""
    from fprt.choices import nearest_choice

    chosen = list(PARTS) if not parts else list(dict.fromkeys(parts))
    for part in chosen:
        if part not in PARTS:
            hint = nearest_choice(part, list(PARTS))
            raise FprtError(f"fprt cache clear: {part!r} is not a cache part; expected some of {', '.join(PARTS)}"
                            + (f". Did you mean {hint!r}?" if hint else ""))
    info = cache_info(root)
    freed = {"root": info["root"], "parts": chosen, "files": 0, "bytes": 0}
    for part in chosen:
        folder = Path(info["parts"][part]["path"])
        if folder.is_symlink():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)
        else:
            continue
        freed["files"] += info["parts"][part]["files"]
        freed["bytes"] += info["parts"][part]["bytes"]
    return freed
