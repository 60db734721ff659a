"""fprt.export — ONNX export with parity checks, INT8 quantisation, TensorRT engine builds.

    from fprt.export import export_onnx, load_onnx_meta, build_engine

- ``export_onnx(run_or_checkpoint, out, ...)`` → ``ExportResult`` (``fprt export-onnx``)
- ``load_onnx_meta(path)`` → ``ModelMeta`` of an fprt ONNX file (what the runtime reads)
- ``build_engine(onnx, out, ...)`` → a TensorRT engine (``fprt build-engine``; needs the ``[gpu]`` extra)

Submodules: ``graph`` (torch → ONNX), ``metadata``, ``parity``, ``precision`` (FP16, INT8 + gate),
``images`` (parity / calibration images), ``ort`` (ONNX Runtime helpers), ``engine_cache`` (TensorRT
cache keys, profiles), ``tensorrt`` (the only module importing TensorRT), ``bench`` (throughput).
Importing this package imports neither torch nor onnxruntime nor TensorRT.
"""

from __future__ import annotations

from fprt.lazy import lazy_exports

_EXPORTS = {
    "export_onnx": "fprt.export.onnx_export",
    "ExportResult": "fprt.export.onnx_export",
    "load_onnx_meta": "fprt.export.metadata",
    "read_onnx": "fprt.export.metadata",
    "load_embed_meta": "fprt.export.metadata",
    "BARS": "fprt.export.parity",
    "ParityReport": "fprt.export.parity",
    "Int8Gate": "fprt.export.precision",
    "Int8Options": "fprt.export.precision",
    "build_engine": "fprt.export.tensorrt",
    "load_engine": "fprt.export.tensorrt",
    "TensorRTRunner": "fprt.export.tensorrt",
    "EngineCache": "fprt.export.engine_cache",
    "BatchProfile": "fprt.export.engine_cache",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
