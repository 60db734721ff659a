"""fprt — the fingerprint runtime.

Audits synthetic medical images for traces of the real images their generator was trained on.

``import fprt`` is light: it imports neither torch nor onnxruntime. The subpackages load on first use:

- ``fprt.data``      — dataset layouts, image decoding, streaming loader, bad-file checks
- ``fprt.demo``      — synthetic CT-like demo datasets (``fprt make-demo-data``)
- ``fprt.preprocess``— the ``Preprocess`` spec shared by training, export and scoring
- ``fprt.modelmeta`` — ``ModelMeta``: everything a model file carries besides its weights
- ``fprt.metrics``   — task metrics (scikit-learn does the work)
- ``fprt.trainer``   — Siamese nets, pair scorers, classifiers and their training (folder ``trainer/``)
- ``fprt.export``    — ONNX export with parity checks, INT8, TensorRT engines (folder ``export/``)
- ``fprt.runtime``   — ``fprt score``: backends, pipeline, similarity extension (folder ``runtime/``)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "checks",
    "cli",
    "data",
    "demo",
    "export",
    "io",
    "metrics",
    "modelmeta",
    "preprocess",
    "runtime",
    "trainer",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'fprt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
