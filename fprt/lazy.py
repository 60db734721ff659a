"""Lazy package exports: names resolved (and cached) on first use, so importing a package stays light.

    _EXPORTS = {"train": "fprt.trainer.training", "discover": ".layout"}   # absolute, or relative to the package
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(namespace: dict, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for a package whose ``namespace`` (its ``globals()``)
    exports ``exports``: name → module holding it."""
    package = namespace["__name__"]

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
