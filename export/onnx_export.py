"""``export_onnx``: a trained model → a checked, self-describing ONNX file (``fprt export-onnx``).

Steps, all in memory until every check has passed:

1. load the run or checkpoint (``fprt.trainer.load_checkpoint``; never unpickles) or take a module +
   ``ModelMeta``;
2. export each graph (``main``; pair models also ``embed``) with a dynamic batch axis
   (``fprt.export.graph``), ``onnx.checker`` with ``full_check``;
3. parity of the fp32 graph against PyTorch at batch 1 and 16 (``fprt.export.parity``);
4. ``--fp16``: convert, parity at the fp16 bars; ``--int8``: quantise on ``--calib`` images (default: the run's training data, as ``fprt bench``), parity at
   the int8 bars and the accuracy gate on the calibration images (``fprt.export.precision``);
5. write the ``ModelMeta`` (with ``extra["export"]``: precision, input dtype, opset, exporter,
   parity, companion embed graph) into ``metadata_props``, check again, then write the files
   atomically: ``<out>.embed.onnx`` (pair models), ``<out>``, ``<out>.parity.json``.

Any failure raises (``ParityError`` when a bar is missed, ``ModelError`` / ``DataError`` otherwise)
and leaves no new file behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fprt.errors import FprtError, ModelError, ParityError
from fprt.export.parity import DEFAULT_BATCHES
from fprt.export.precision import GateResult, Int8Gate, Int8Options
from fprt.modelmeta import ModelMeta


@dataclass
class ExportResult:
    path: Path
    parity_path: Path
    meta: ModelMeta
    precision: str
    uint8_input: bool
    exporter: str
    opset: int
    embed_path: Path | None = None
    parity: list = field(default_factory=list)  # ParityReport per graph and precision
    gates: dict[str, GateResult] = field(default_factory=dict)  # INT8 gate per graph
    images: str = ""
    synthetic_images: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def max_abs_err_fp32(self) -> float:
        """The largest fp32 |ONNX − PyTorch| over every graph, batch and output."""
        return max(
            (o["max_abs_err"] for r in self.parity if r.precision == "fp32" for b in r.batches for o in b["outputs"]),
            default=float("nan"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.meta.model,
            "kind": self.meta.kind,
            "onnx": self.path.name,
            "embed_onnx": self.embed_path.name if self.embed_path else None,
            "precision": self.precision,
            "uint8_input": self.uint8_input,
            "exporter": self.exporter,
            "opset": self.opset,
            "images": self.images,
            "synthetic_images": self.synthetic_images,
            "passed": all(r.passed for r in self.parity) and all(g.passed for g in self.gates.values()),
            "checks": [r.to_dict() for r in self.parity],
            "int8_gate": {part: g.to_dict() for part, g in self.gates.items()} or None,
            "notes": self.notes,
        }

    def report_lines(self) -> list[str]:
        """The parity figures and the INT8 gate, as printed."""
        head = f"parity: ONNX Runtime vs PyTorch on {self.images}"
        if self.synthetic_images:
            head += "; they prove the graph equals the model, not how it behaves on real data: pass --images DIR"
        out = [head]
        for report in self.parity:
            out += report.lines()
        for part, gate in self.gates.items():
            out += [line.replace("int8 gate", f"int8 gate ({part} graph)", 1) for line in gate.lines()]
        return out

    def written_lines(self) -> list[str]:
        out = []
        out.append(f"wrote {self.path} ({self.precision}, {'uint8' if self.uint8_input else 'float32'} input, opset {self.opset}, {self.exporter} exporter)")
        if self.embed_path:
            out.append(f"wrote {self.embed_path} (the pair model's embed graph)")
        out.append(f"wrote {self.parity_path}")
        return out

    def lines(self) -> list[str]:
        return self.report_lines() + self.written_lines()


# ---------------------------------------------------------------- loading
def load_source(source, meta: ModelMeta | None = None):
    """``(model in eval mode on CPU, ModelMeta, description)`` from a run/checkpoint path or a module."""
    import torch

    if isinstance(source, torch.nn.Module):
        if meta is None:
            raise ModelError("export_onnx(module, ...) needs meta=ModelMeta(...) describing the module")
        return source.eval(), ModelMeta.from_dict(meta.to_dict()), f"module {type(source).__name__}"
    path = Path(source)
    if not path.exists():
        raise ModelError(f"{path}: no such run folder or checkpoint")
    try:
        from fprt.trainer import load_checkpoint
    except ImportError:
        from fprt.trainer.checkpoint import load_checkpoint
    model, loaded = load_checkpoint(path)
    if meta is not None:
        loaded = meta
    loaded = ModelMeta.from_dict(loaded.to_dict())
    if loaded.checkpoint_sha256 is None:
        weights = path if path.is_file() else next(iter(sorted(path.glob("*.safetensors"))), None)
        if weights is not None:
            from fprt.io import sha256_file

            loaded.checkpoint_sha256 = sha256_file(weights)
    return model.eval(), loaded, str(path)


def _opset(proto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def _check(proto, what: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ModelError(f"{what}: the exported graph fails onnx.checker: {str(exc).strip().splitlines()[0]}") from exc


def _batched_reference(module, meta, pixels, part, batch=16):
    """``torch_outputs`` in batches of ``batch`` (bounded memory on the calibration set)."""
    from fprt.export.graph import torch_outputs

    if meta.kind == "pair" and part == "main":
        # pair partners are rolled over the whole set, as fprt.export.ort.run does
        import torch

        from fprt.export.ort import pair_partner

        x = torch.from_numpy(meta.preprocess.normalize_uint8(pixels))
        y = torch.from_numpy(meta.preprocess.normalize_uint8(pair_partner(pixels)))
        with torch.inference_mode():
            p = torch.cat([module(x[s : s + batch], y[s : s + batch]) for s in range(0, len(pixels), batch)])
        return {"probability": p.reshape(-1).float().numpy()}
    parts = [torch_outputs(module, meta, pixels[s : s + batch], part=part) for s in range(0, len(pixels), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# ---------------------------------------------------------------- export
def export_onnx(
    source,
    out: str | os.PathLike,
    *,
    meta: ModelMeta | None = None,
    opset: int | None = None,
    fp16: bool = False,
    int8: bool = False,
    calib: str | os.PathLike | None = None,
    uint8_input: bool = True,
    images=None,
    n_images: int = 32,
    batch_sizes=DEFAULT_BATCHES,
    exporter: str = "auto",
    int8_options: Int8Options = Int8Options(),
    gate: Int8Gate = Int8Gate(),
    calib_images: int = 128,
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``source`` (a run folder, a ``.safetensors`` checkpoint, or an ``nn.Module`` with ``meta=``)
    to ``out`` (``.onnx``), check it, and write it with its parity report. See the module docstring.

    ``images``: a folder or list of image files for the parity check (default: ``calib`` with
    ``int8``, else the run's training data, else labelled synthetic images). ``log``: called with each
    line of the report (default: print to stdout).
    """
    from fprt.export import graph as G
    from fprt.export import images as I
    from fprt.export import precision as P
    from fprt.export.metadata import EXPORT_KEY, embed_path_for, parity_path_for, set_metadata
    from fprt.export.ort import make_session, run
    from fprt.export.parity import check_parity

    from fprt.formats import get_format

    log = log or (lambda line: print(line, flush=True))
    out = Path(out)
    onnx_format = get_format("onnx")  # the shared format table: suffixes and precisions
    if out.suffix.lower() not in onnx_format.suffixes:
        raise FprtError(f"--out {out}: an ONNX file name must end in {' or '.join(onnx_format.suffixes)}")
    if fp16 and int8:
        raise FprtError("--fp16 and --int8 are exclusive: export one precision per file")
    if int8 and calib is None:
        calib = I.calibration_folder(source if isinstance(source, (str, os.PathLike)) else None)
        if calib is None:
            raise FprtError("--int8 needs --calib DIR (a folder of real images or a training dataset): the training "
                            "data the run's config.json names (data.root) is not there")
        log(f"INT8 calibration on the run's training data {calib} (--calib DIR to choose others)")
    if calib is not None and not int8:
        raise FprtError("--calib is only used with --int8")
    if not batch_sizes or min(batch_sizes) < 1:
        raise FprtError(f"parity batch sizes must be ≥ 1, got {list(batch_sizes)}")
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    assert precision in onnx_format.precisions

    model, meta, described = load_source(source, meta)
    pre = meta.preprocess
    if images is None and int8:
        images = calib
    imageset = I.parity_images(pre, images=images, run=None if described.startswith("module ") else source, n=n_images)
    calibset = I.calibration_set(calib, pre, n=calib_images) if int8 else None
    log(f"exporting {meta.model} ({meta.kind}, {meta.task}) from {described} → {out} [{precision}{', uint8 input' if uint8_input else ''}]")

    parts = ["main", "embed"] if meta.kind == "pair" else ["main"]
    result = ExportResult(
        path=out,
        parity_path=parity_path_for(out),
        meta=meta,
        precision=precision,
        uint8_input=uint8_input,
        exporter="",
        opset=0,
        embed_path=embed_path_for(out) if meta.kind == "pair" else None,
        images=imageset.source,
        synthetic_images=imageset.synthetic,
    )
    protos: dict[str, Any] = {}
    for part in parts:
        graph_module = G.wrap(model, meta, part=part, uint8_input=uint8_input)
        ref_module = graph_module if not uint8_input else G.wrap(model, meta, part=part, uint8_input=False)

        def reference(pixels, _m=ref_module, _part=part):
            return G.torch_outputs(_m, meta, pixels, part=_part)

        proto, used, notes = G.to_onnx(graph_module, meta, part=part, uint8_input=uint8_input, opset=opset, exporter=exporter)
        result.exporter = result.exporter or used
        result.notes += notes
        result.opset = _opset(proto)
        _check(proto, f"{out} ({part} graph)")
        report = check_parity(make_session(proto), reference, imageset, pre, precision="fp32", graph=part, batch_sizes=batch_sizes)
        result.parity.append(report)
        if not report.passed:
            _fail(result, log, report.failures)

        if fp16:
            proto = P.to_fp16(proto)
            report = check_parity(make_session(proto), reference, imageset, pre, precision="fp16", graph=part, batch_sizes=batch_sizes)
            result.parity.append(report)
            if not report.passed:
                _fail(result, log, report.failures)
        elif int8:
            proto = P.quantize_int8(proto, calibset.pixels, pre, int8_options)
            session = make_session(proto)
            report = check_parity(session, reference, imageset, pre, precision="int8", graph=part, batch_sizes=batch_sizes)
            result.parity.append(report)
            if not report.passed:
                _fail(result, log, report.failures)
            ref = _batched_reference(ref_module, meta, calibset.pixels, part)
            got = run(session, calibset.pixels, pre, batch_size=16)
            gate_result = P.int8_gate(ref, got, meta, calibset, gate)
            result.gates[part] = gate_result
            if not gate_result.passed:
                for line in result.report_lines():
                    log(line)
                P.require(gate_result, f"{out} ({part} graph)")
        protos[part] = proto

    # metadata: the embed graph first (the main file records its sha256)
    versions = _versions()
    serialized: dict[str, bytes] = {}
    for part in reversed(parts):
        info = {
            "part": part,
            "precision": precision,
            "input": "uint8" if uint8_input else "float32",
            "opset": _opset(protos[part]),
            "exporter": result.exporter,
            "parity": {
                "passed": True,
                "images": imageset.source,
                "synthetic_images": imageset.synthetic,
                "max_abs_err_fp32": max(
                    (o["max_abs_err"] for r in result.parity if r.graph == part and r.precision == "fp32" for b in r.batches for o in b["outputs"]),
                    default=None,
                ),
                "report": result.parity_path.name,
            },
            **versions,
        }
        if int8:
            info["int8"] = {"options": asdict(int8_options), "calibration": calibset.source}
        if part == "main" and "embed" in serialized:
            from fprt.io import sha256_bytes

            info["embed_onnx"] = {"file": result.embed_path.name, "sha256": sha256_bytes(serialized["embed"])}
        part_meta = ModelMeta.from_dict(meta.to_dict())
        part_meta.extra = {**part_meta.extra, EXPORT_KEY: info}
        set_metadata(protos[part], part_meta)
        _check(protos[part], f"{out} ({part} graph, with metadata)")
        serialized[part] = protos[part].SerializeToString()
        if part == "main":
            result.meta = part_meta

    for line in result.report_lines():
        log(line)
    _write(result, serialized)
    for line in result.written_lines():
        log(line)
    if precision == "fp32" and P.recommended_cpu_precision(meta) == "int8":
        log("hint: on CPUs this backbone runs ≈1.8× faster in INT8 (ResNet-18, measured): export again with --int8 --calib DIR")
    return result


def _fail(result: ExportResult, log, failures: list[str]) -> None:
    for line in result.report_lines():
        log(line)
    raise ParityError(f"{result.path}: parity check failed, nothing written: " + "; ".join(failures))


def _write(result: ExportResult, serialized: dict[str, bytes]) -> None:
    """Write the embed graph, the model and the report: each is staged to a temporary file beside its
    target first (fsynced), and only when all three are on disk are they renamed over their targets,
    embed graph first, so a failure at any point leaves the previous export (if any) as it was."""
    import json

    from fprt.io import atomic_write_bytes

    items = []
    if "embed" in serialized:
        items.append((result.embed_path, serialized["embed"]))
    items.append((result.path, serialized["main"]))
    items.append((result.parity_path, (json.dumps(result.to_dict(), indent=2) + "\n").encode()))
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in items:
            tmp = path.with_name(f".{path.name}.export-staging")
            atomic_write_bytes(tmp, data)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
