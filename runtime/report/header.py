"""The head of the report: what was scored, with which model and method, how many images, what went
wrong, how long it took, the metrics, and the evidence table of ``--method auto``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fprt.runtime.report.cells import fmt

log = logging.getLogger("fprt.report")


@dataclass
class Header:
    facts: list[tuple[str, str]]  # (what, value) rows of the first table
    method_params: list[tuple[str, str]]
    counts: list[tuple[str, str]]
    timings: list[tuple[str, str, str]]  # stage, seconds, items
    metrics: list[tuple[str, str]]
    bad_files: list[str]
    bad_count: int
    total_seconds: str = "–"
    evidence: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _value(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v, 6)
    if isinstance(v, (dict, list)):
        text = json.dumps(v, sort_keys=True)
        return text if len(text) <= 300 else text[:297] + "…"
    return "–" if v is None else str(v)


def build(summary: dict[str, Any], metrics: dict[str, Any] | None) -> Header:
    data = summary.get("data", {})
    backend = summary.get("backend", {}) or {}
    method = summary.get("method", {})
    score = summary.get("score", {})
    precision = backend.get("precision") or backend.get("dtype") or _precision(backend)
    facts = [
        ("task", summary.get("task", "–")),
        ("data", _value(data.get("root"))),
        ("layout", _value(data.get("layout"))),
        ("reference", _value(data.get("reference"))),
        ("model", _value(backend.get("model"))),
        ("model sha256", _value(summary.get("model_sha256") or backend.get("model_sha256"))),
        ("backend", " ".join(str(x) for x in (backend.get("format"), "on", backend.get("device")) if x) +
         (f" ({', '.join(backend['providers'])})" if backend.get("providers") else "")),
        ("precision", _value(precision)),
        ("method", f"{method.get('name', '–')} — {method.get('summary', '')} ({method.get('source', '')})"),
        ("score", f"{score.get('is', '–')}; larger = {score.get('larger_means', '–')}"),
        ("neighbour scores", _value(score.get("neighbour_scores"))),
        ("fprt", _value(summary.get("fprt_version"))),
    ]
    params = [(k, _value(v)) for k, v in (method.get("params") or {}).items()]
    params += [(f"option {k}", _value(v)) for k, v in (method.get("options") or {}).items()]
    counts = summary.get("counts", {})
    count_rows = [(k, _value(v)) for k, v in counts.items()]
    timings = []
    for stage, v in (summary.get("timings") or {}).items():
        if isinstance(v, dict):
            timings.append((stage, fmt(v.get("seconds"), 4), _value(v.get("items", v.get("count")))))
        else:
            timings.append((stage, fmt(v, 4) if isinstance(v, (int, float)) else _value(v), ""))
    for key in ("images_per_s", "model_images_per_s", "infer_only_images_per_s"):
        if summary.get(key) is not None:
            timings.append((key.replace("_", " "), _value(summary[key]), ""))
    m = metrics or summary.get("metrics") or {}
    metric_rows = [(k, _value(v)) for k, v in m.items() if isinstance(v, (int, float)) and k not in ("n",)]
    run_csv = summary.get("run_csv") or {}
    notes = []
    if run_csv.get("complete") is False:  # --on-error skip left test images out of run.csv
        missing = run_csv.get("missing_ids") or []
        notes.append(f"INCOMPLETE: run.csv lacks {len(missing)} test image(s) skipped as bad files"
                     + (f", e.g. {', '.join(missing[:5])}" if missing else "") + "; it is not a complete submission.")
    total = (summary.get("timings") or {}).get("total_wall_s")
    return Header(facts, params, count_rows, timings, metric_rows, list(summary.get("bad_files") or []),
                  int(counts.get("bad_files", 0) or 0), fmt(total, 4) if isinstance(total, (int, float)) else "–",
                  summary.get("evidence"), notes)


def _precision(backend: dict) -> str | None:
    """The precision the model was exported at (ModelMeta.extra["export"]["precision"] in the ONNX file)."""
    path = Path(str(backend.get("model") or ""))
    if backend.get("format") != "onnx" or path.suffix != ".onnx" or not path.is_file():
        return None
    try:
        import onnx

        from fprt.modelmeta import ModelMeta

        proto = onnx.load(str(path), load_external_data=False)
        meta = ModelMeta.from_onnx_metadata({p.key: p.value for p in proto.metadata_props}, source=str(path))
    except Exception as exc:  # the header says "unknown" rather than failing the report on a model read
        log.warning("report: cannot read the precision of %s (%s)", path, exc)
        return None
    export = (meta.extra or {}).get("export") or {}
    return export.get("precision") or "fp32 (not exported by fprt export-onnx)"
