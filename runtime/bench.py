"""``fprt bench``: one table of every model format × precision × batch size on this machine.

    from fprt.runtime.bench import run_bench
    report = run_bench("runs/siamese", data="demo/subsets", batch_sizes=(1, 8, 64))
    report.print()                      # the rich table
    report.write("runs/bench")          # bench.json + bench.md, written atomically

As Ultralytics' benchmark mode does, the loop is driven by the format table (``fprt.formats.FORMATS``):
every format and every precision it can hold gets a row, either measured (``ok``), ``skipped`` with the
reason (TensorRT without a GPU, INT8 without calibration images, ...) or ``failed`` with the error
(an export whose parity check or INT8 gate refused, a session that would not load).

MODEL is a training run (folder or ``.safetensors``) or an fprt ONNX file:

- a run is exported by ``fprt.export.export_onnx`` (parity checks included) into a content-keyed cache,
  ``$FPRT_CACHE_DIR/bench/<checkpoint hash + versions>/``: fp32 always, INT8 on the CPU when calibration
  images are at hand (``data``'s training split, else the run's own training data), fp16 on the GPU;
  TensorRT engines (GPU) are built by ``fprt.export.build_engine`` (its own engine cache);
- an ONNX file is timed at its own precision (the other precisions need the run).

Timing (this module holds no timing loop of its own: ``fprt.export.bench`` does the timing):

- CPU: ``ort_runner`` / ``torch_runner`` — the model alone on pre-decoded, pre-normalised batches
  (feeds built once outside the timing); ONNX Runtime and PyTorch both run ``threads`` intra-op threads
  (default: physical cores).
- GPU: the runtime backend's ``infer`` (uint8 upload + normalisation on the device + model), each call
  ended by ``torch.cuda.synchronize()``; torch fp16/bf16 under ``torch.autocast``.
- Per batch size every variant runs round-robin (``interleaved``), one batch each per round, so all see
  the same background load and the ratios between rows stay meaningful on a shared machine. One probe
  round (after a warm-up call) sizes the number of rounds to about ``seconds`` per batch size
  (``MIN_ROUNDS``..``MAX_ROUNDS``) unless ``rounds`` is given. p50 / p99 are per-batch latencies over the
  rounds (below 100 rounds p99 is close to the slowest batch); images/s = batch / p50.

Quality, per variant (independent of the batch size):

- ``cos min`` / ``cos mean``: each image's output row (``embedding``; also ``logits`` for classifiers)
  against the reference variant (PyTorch fp32, else ONNX fp32) on the same images, as cosine;
- ``accuracy``: when ``data`` has a test split with ``test/labels.csv``, ``fprt.runtime.score`` with the
  model's default method is run through this very variant's backend and its accuracy reported
  (subsets: multiclass accuracy; membership: binary accuracy); the other metrics go to the JSON.

Seeds are fixed (torch, the image sample), so two runs time the same inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from fprt.errors import FprtError, MissingDependencyError, ModelError

DEFAULT_BATCHES = (1, 8, 64)
DEFAULT_SECONDS = 6.0  # time budget per batch size, shared by all variants (sets the rounds)
MIN_ROUNDS = 5
MAX_ROUNDS = 200
DEFAULT_IMAGES = 64  # images decoded once: the timing batches cycle through them; drift is measured on them
GPU_PRECISIONS = ("fp16", "bf16")
STATUSES = ("ok", "skipped", "failed")
MODEL_SOURCES = ("run", "onnx")


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Variant:
    """One format × precision: the file it runs and what became of it."""

    format: str
    precision: str
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    path: Path | None = None
    size_bytes: int | None = None
    export: dict | None = None  # how the file was made (export parity, cache hit)
    accuracy: float | None = None
    metrics: dict | None = None  # every metric of the accuracy run, with the method
    cosine: dict | None = None  # output name → {"mean": ..., "min": ...} against the reference variant
    requested: bool = False  # named explicitly with --precisions (GPU precisions then run on the CPU too)

    @property
    def key(self) -> str:
        return f"{self.format}-{self.precision}"

    def fail(self, exc: BaseException | str) -> None:
        self.status = "failed"
        self.reason = _one_line(exc)

    def skip(self, reason: str) -> None:
        self.status = "skipped"
        self.reason = reason

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        d["key"] = self.key
        return d


@dataclass
class BenchRow:
    """One line of the table: a variant at one batch size (skipped / failed variants: one line, batch None)."""

    format: str
    precision: str
    batch: int | None
    status: str
    reason: str = ""
    p50_ms: float | None = None
    p99_ms: float | None = None
    images_per_s: float | None = None
    speedup: float | None = None  # images/s over the speed reference at the same batch
    rounds: int | None = None
    accuracy: float | None = None
    cos_min: float | None = None
    cos_mean: float | None = None
    size_mb: float | None = None

    @property
    def key(self) -> str:
        return f"{self.format}-{self.precision}"

    def to_dict(self) -> dict:
        return asdict(self)


COLUMNS = ("Format", "Precision", "Batch", "Status", "p50 ms", "p99 ms", "img/s", "× ref", "Accuracy", "cos min", "Size MB")


@dataclass
class BenchReport:
    model: str
    model_name: str
    kind: str
    task: str
    source: str  # run | onnx
    device: str
    threads: int
    batch_sizes: list[int]
    images: str  # where the timing / drift images came from
    n_images: int
    data: str | None
    speed_reference: str | None  # variant key the "× ref" column divides by
    drift_reference: str | None  # variant key the cosines are measured against
    variants: list[Variant]
    rows: list[BenchRow]
    machine: dict
    started: str
    finished: str
    seconds: float
    command: str
    accuracy_note: str = ""
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ derived
    def row(self, key: str, batch: int) -> BenchRow | None:
        return next((r for r in self.rows if r.key == key and r.batch == batch and r.status == "ok"), None)

    def ratio(self, key: str, over: str, batch: int) -> float | None:
        """images/s of ``key`` over images/s of ``over`` at ``batch`` (measured in the same rounds)."""
        a, b = self.row(key, batch), self.row(over, batch)
        if a is None or b is None or not b.images_per_s:
            return None
        return a.images_per_s / b.images_per_s

    def headline_ratios(self) -> dict[str, dict[int, float]]:
        """The ratios the README and the lead's note quote, per batch size (only those measured)."""
        pairs = {
            "onnx-fp32 / torch-fp32": ("onnx-fp32", "torch-fp32"),
            "onnx-int8 / onnx-fp32": ("onnx-int8", "onnx-fp32"),
            "onnx-fp16 / onnx-fp32": ("onnx-fp16", "onnx-fp32"),
            "torch-fp16 / torch-fp32": ("torch-fp16", "torch-fp32"),
            "tensorrt-fp32 / torch-fp32": ("tensorrt-fp32", "torch-fp32"),
            "tensorrt-fp16 / torch-fp32": ("tensorrt-fp16", "torch-fp32"),
        }
        out: dict[str, dict[int, float]] = {}
        for name, (a, b) in pairs.items():
            values = {bs: r for bs in self.batch_sizes if (r := self.ratio(a, b, bs)) is not None}
            if values:
                out[name] = values
        return out

    def cells(self, row: BenchRow) -> list[str]:
        status = row.status if row.status == "ok" else f"{row.status}: {row.reason}"
        ref = row.key == self.drift_reference
        return [
            row.format,
            row.precision,
            "—" if row.batch is None else str(row.batch),
            status,
            _fmt(row.p50_ms, ".2f"),
            _fmt(row.p99_ms, ".2f"),
            _fmt(row.images_per_s, ".1f"),
            _fmt(row.speedup, ".2f"),
            _fmt(row.accuracy, ".4f"),
            "ref" if ref and row.status == "ok" else _fmt(row.cos_min, ".5f"),
            _fmt(row.size_mb, ".2f"),
        ]

    def header_lines(self) -> list[str]:
        m = self.machine
        load = f"load average {_fmt(m.get('load_before'), '.2f')} before, {_fmt(m.get('load_after'), '.2f')} after"
        return [
            f"model: {self.model} ({self.model_name}, {self.kind}, {self.task}; MODEL is a {self.source})",
            f"machine: {m.get('description', '?')}; {load}",
            f"device {self.device}, {self.threads} threads; images: {self.images}; date {self.finished}",
            f"command: {self.command}",
        ]

    def footer_lines(self) -> list[str]:
        lines = []
        if self.speed_reference:
            lines.append(f"× ref: images/s over {self.speed_reference} at the same batch, measured in the same interleaved rounds.")
        if self.drift_reference:
            lines.append(f"cos min: smallest per-image cosine of the outputs to {self.drift_reference} on the same {self.n_images} images.")
        if self.accuracy_note:
            lines.append(self.accuracy_note)
        for name, values in self.headline_ratios().items():
            lines.append(f"{name}: " + ", ".join(f"batch {b}: {v:.2f}×" for b, v in values.items()))
        lines += self.notes
        return lines

    # ------------------------------------------------------------------ outputs
    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("variants", "rows")}
        d["variants"] = [v.to_dict() for v in self.variants]
        d["rows"] = [r.to_dict() for r in self.rows]
        d["columns"] = list(COLUMNS)
        d["headline_ratios"] = {k: {str(b): v for b, v in vals.items()} for k, vals in self.headline_ratios().items()}
        return d

    def to_markdown(self) -> str:
        lines = [f"### fprt bench — {self.model_name} on {self.device}", ""]
        lines += [f"- {line}" for line in self.header_lines()]
        lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        for row in self.rows:
            lines.append("| " + " | ".join(c.replace("|", "/") for c in self.cells(row)) + " |")
        lines.append("")
        lines += [f"- {line}" for line in self.footer_lines()]
        return "\n".join(lines) + "\n"

    def print(self, console=None) -> None:
        from rich.console import Console
        from rich.table import Table

        # piped or logged output is not wrapped at 80 columns: the table stays one line per row
        console = console or (Console() if sys.stdout.isatty() else Console(width=220))
        table = Table(title=f"fprt bench — {self.model_name} on {self.device}", title_justify="left")
        for name in COLUMNS:
            table.add_column(name, justify="left" if name in ("Format", "Precision", "Status") else "right", overflow="fold")
        style = {"ok": "green", "skipped": "yellow", "failed": "red"}
        for row in self.rows:
            cells = self.cells(row)
            cells[3] = f"[{style[row.status]}]{cells[3]}[/]"
            table.add_row(*cells)
        for line in self.header_lines():
            console.print(line, highlight=False, soft_wrap=True)
        console.print(table)
        for line in self.footer_lines():
            console.print(line, highlight=False, soft_wrap=True)

    def write(self, out: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
        """``out/bench.json`` and ``out/bench.md``, swapped in together (``fprt.outdir``: a non-empty ``out``
        is refused unless ``overwrite``)."""
        from fprt.io import atomic_write_json, atomic_write_text
        from fprt.outdir import OutputFolder

        with OutputFolder(out, overwrite=overwrite, command="bench") as folder:
            atomic_write_json(folder.path / "bench.json", self.to_dict())
            atomic_write_text(folder.path / "bench.md", self.to_markdown())
            folder.commit()
        return {"json": folder.out / "bench.json", "markdown": folder.out / "bench.md"}


# ---------------------------------------------------------------------------------------------- parsing
def parse_batch_sizes(text: str | Sequence[int] | None) -> list[int]:
    """``"1,8,64"`` → [1, 8, 64] (sorted, unique); a clear error on anything else."""
    if text is None:
        return list(DEFAULT_BATCHES)
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        s = str(item).strip()
        if not s:
            continue
        try:
            value = int(s)
        except ValueError:
            raise FprtError(f"--batch-sizes {text!r}: {s!r} is not a whole number; expected e.g. 1,8,64") from None
        if value < 1:
            raise FprtError(f"--batch-sizes {text!r}: batch sizes must be ≥ 1, got {value}")
        out.append(value)
    if not out:
        raise FprtError(f"--batch-sizes {text!r}: no batch size given; expected e.g. 1,8,64")
    return sorted(set(out))


def parse_backends(text: str | Sequence[str] | None) -> list[str] | None:
    """``"torch,onnx"`` → format names from the format table (aliases such as ort / trt accepted)."""
    from fprt.formats import get_format

    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [get_format(s).name for s in (i.strip() for i in items) if s]
    if not names:
        raise FprtError(f"--backends {text!r}: no backend given; expected some of torch, onnx, tensorrt")
    return list(dict.fromkeys(names))


def parse_precisions(text: str | Sequence[str] | None) -> list[str] | None:
    import difflib

    from fprt.formats import FORMATS

    if text is None:
        return None
    known = list(dict.fromkeys(p for f in FORMATS for p in f.precisions))
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item not in known:
            close = difflib.get_close_matches(item, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise FprtError(f"--precisions: unknown precision {item!r}; expected some of {known}.{hint}")
        out.append(item)
    if not out:
        raise FprtError(f"--precisions {text!r}: no precision given; expected some of {known}")
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------------------------- machine
def machine_info(device: str = "cpu") -> dict:
    """What the numbers were measured on: CPU model, cores, SIMD flags, memory, GPU, library versions."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version()}
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu in ("", platform.machine(), platform.processor()):
                    cpu = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    from fprt.runtime.backends import physical_cores

    info["cpu"] = cpu
    info["logical_cpus"] = os.cpu_count()
    info["physical_cores"] = physical_cores()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if f in flags]
    info["simd"] = simd
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal:")).split()[1])
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        info["memory_gib"] = None
    versions = {}
    for mod in ("torch", "onnxruntime", "onnx", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing library is reported, not raised
            versions[mod] = None
    info["versions"] = versions
    gpu = None
    if device == "cuda":
        try:
            import torch

            if torch.cuda.is_available():
                cap = torch.cuda.get_device_capability()
                gpu = f"{torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]}), CUDA {torch.version.cuda}"
        except Exception:  # noqa: BLE001
            gpu = None
    info["gpu"] = gpu
    no = [f for f in ("avx512f", "avx512_vnni") if f not in flags] if flags else []
    desc = f"{cpu}, {info['physical_cores']} physical cores / {info['logical_cpus']} CPUs"
    if simd:
        desc += ", " + "/".join(s.upper() for s in simd)
    if no:
        desc += ", no " + "/".join(s.upper() for s in no)
    if info["memory_gib"]:
        desc += f", {info['memory_gib']:.0f} GiB"
    desc += f", GPU: {gpu}" if gpu else ", no GPU" if device == "cpu" else ""
    info["description"] = desc
    return info


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


# ---------------------------------------------------------------------------------------------- model source
@dataclass
class _Source:
    path: Path
    kind: str  # run | onnx
    meta: Any
    module: Any = None  # the torch module (runs)
    onnx_precision: str | None = None  # precision of an ONNX MODEL
    checkpoint: Path | None = None  # the .safetensors of a run


def _load_source(model: str | os.PathLike) -> _Source:
    from fprt.formats import format_for_path

    path = Path(model)
    if not path.exists():
        raise ModelError(f"{path}: no such training run folder, checkpoint or ONNX file")
    fmt = format_for_path(path)
    if fmt.name == "torch":
        from fprt.trainer import load_checkpoint
        from fprt.trainer.checkpoint import resolve_weights

        module, meta = load_checkpoint(path)
        return _Source(path, "run", meta, module=module, checkpoint=resolve_weights(path))
    if fmt.name == "onnx":
        import onnx

        from fprt.export import load_onnx_meta
        from fprt.export.precision import graph_precision

        meta = load_onnx_meta(path)
        return _Source(path, "onnx", meta, onnx_precision=graph_precision(onnx.load(str(path), load_external_data=False)))
    raise FprtError(
        f"{path}: fprt bench takes a training run or an fprt ONNX file; to time a TensorRT engine pass the ONNX "
        "file it was built from with --device cuda (the engine is built and cached for this GPU)"
    )


def _calibration_folder(source: _Source, data: Path | None) -> Path | None:
    """Where INT8 calibration images come from: ``data`` when it holds a training split, else the run's data."""
    from fprt.export.images import calibration_folder

    return calibration_folder(source.path if source.kind == "run" else None, data)


# ---------------------------------------------------------------------------------------------- planning
def plan_variants(source: _Source, *, device: str, backends: list[str] | None, precisions: list[str] | None,
                  calib: Path | None) -> list[Variant]:
    """Every format × precision of the format table, with the reason when it cannot run here."""
    from fprt.formats import FORMATS

    variants = []
    for fmt in FORMATS:
        if backends is not None and fmt.name not in backends:
            continue
        for prec in fmt.precisions:
            if precisions is not None and prec not in precisions:
                continue
            v = Variant(fmt.name, prec, requested=precisions is not None)
            variants.append(v)
            if device == "cpu" and not fmt.cpu:
                v.skip(f"{fmt.name} runs on the GPU only (--device cuda)")
            elif device == "cuda" and not fmt.gpu:
                v.skip(f"{fmt.name} runs on the CPU only")
            elif fmt.name == "torch":
                if source.kind != "run":
                    v.skip("MODEL is an ONNX file: PyTorch needs the training run")
                elif device == "cpu" and prec in GPU_PRECISIONS:
                    v.skip(f"{prec} is a GPU precision in fprt (--device cuda)")
            elif fmt.name == "onnx":
                if source.kind == "onnx" and prec != source.onnx_precision:
                    v.skip(f"MODEL is a {source.onnx_precision} ONNX file: pass the training run to export {prec} too")
                elif prec == "int8" and device == "cuda":
                    v.skip("INT8 QDQ files target ONNX Runtime's CPU EP")
                elif prec in GPU_PRECISIONS and device == "cpu" and not v.requested and source.kind == "run":
                    v.skip(f"{prec} targets GPUs (--device cuda; or ask for it with --precisions {prec})")
                elif prec == "int8" and source.kind == "run" and calib is None:
                    v.skip("INT8 needs calibration images: pass --data DIR with a training split")
            elif fmt.name == "tensorrt":
                import importlib.util

                if importlib.util.find_spec("tensorrt") is None:
                    v.skip("tensorrt is not installed (pip install 'fprt[gpu]')")
                elif source.kind == "onnx" and source.onnx_precision == "int8":
                    v.skip("TensorRT is not built from INT8 QDQ files")
    return variants


# ---------------------------------------------------------------------------------------------- files
def bench_cache_dir() -> Path:
    base = os.environ.get("FPRT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fprt")
    return Path(base) / "bench"


def _versions_key() -> dict:
    import onnx
    import onnxruntime
    import torch

    from fprt import __version__

    return {"fprt": __version__, "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def _folder_digest(folder: Path) -> str:
    """Names, sizes and modification times of every file under ``folder`` (what calibration reads)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _export_dir(source: _Source, work_dir: Path | None) -> Path:
    if work_dir is not None:
        return Path(work_dir)
    from fprt.runtime.backends.torch_backend import checkpoint_hash

    key = json.dumps({"checkpoint": checkpoint_hash(source.path), **_versions_key()}, sort_keys=True)
    return bench_cache_dir() / hashlib.sha256(key.encode()).hexdigest()[:20]


def _size(*paths: Path | None) -> int | None:
    sizes = [p.stat().st_size for p in paths if p is not None and p.exists()]
    return sum(sizes) if sizes else None


def _onnx_files(path: Path) -> tuple[Path, ...]:
    from fprt.runtime.backends.onnx_backend import embed_companion

    companion = embed_companion(path)
    return (path, companion) if companion else (path,)


def prepare_files(source: _Source, variants: list[Variant], *, device: str, data: Path | None, calib: Path | None,
                  batch_sizes: list[int], work_dir: Path | None, log: Callable[[str], None]) -> None:
    """Give every runnable variant its file: the run itself, an exported (cached) ONNX file, or an engine."""
    folder = None
    onnx_of: dict[str, Path] = {}
    for v in variants:
        if v.status != "ok":
            continue
        try:
            if v.format == "torch":
                v.path = source.path
                v.size_bytes = _size(source.checkpoint)
            elif v.format == "onnx":
                if source.kind == "onnx":
                    v.path = source.path
                    v.export = {"from": "MODEL"}
                else:
                    folder = folder or _export_dir(source, work_dir)
                    v.path, v.export = _export(source, v.precision, folder, calib, log)
                onnx_of[v.precision] = v.path
                v.size_bytes = _size(*_onnx_files(v.path))
            elif v.format == "tensorrt":
                base = onnx_of.get("fp32") or (source.path if source.kind == "onnx" else None)
                if base is None:
                    folder = folder or _export_dir(source, work_dir)
                    base, _ = _export(source, "fp32", folder, None, log)
                v.path = _engine(base, v.precision, batch_sizes, log)
                v.size_bytes = _size(v.path)
        except ImportError as exc:
            v.skip(f"missing dependency: {exc}")
        except Exception as exc:  # noqa: BLE001 - as Ultralytics' benchmark: one format failing is a row, not a crash
            v.fail(exc)


def _export(source: _Source, precision: str, folder: Path, calib: Path | None, log) -> tuple[Path, dict]:
    """``export_onnx`` of the run at ``precision`` into ``folder`` (reused when already there)."""
    from fprt.export import export_onnx
    from fprt.export.metadata import parity_path_for

    name = f"model.{precision}"
    if precision == "int8":
        name += f".calib-{_folder_digest(calib)}"
    out = folder / f"{name}.onnx"
    if out.exists() and parity_path_for(out).exists():
        return out, {"cached": True, "file": str(out), **_parity_summary(parity_path_for(out))}
    folder.mkdir(parents=True, exist_ok=True)
    log(f"exporting {precision} ONNX → {out}")
    lines: list[str] = []
    try:
        export_onnx(source.path, out, fp16=precision == "fp16", int8=precision == "int8",
                    calib=calib if precision == "int8" else None, log=lines.append)
    except FprtError:
        for line in lines:
            log("  | " + line)
        raise
    return out, {"cached": False, "file": str(out), **_parity_summary(parity_path_for(out))}


def _parity_summary(path: Path) -> dict:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    errs = [o.get("max_abs_err") for c in report.get("checks", []) for b in c.get("batches", []) for o in b.get("outputs", [])]
    errs = [e for e in errs if isinstance(e, (int, float))]
    return {"parity_passed": report.get("passed"), "parity_max_abs_err": max(errs) if errs else None,
            "parity_images": report.get("images"), "int8_gate": report.get("int8_gate")}


def _engine(onnx_path: Path, precision: str, batch_sizes: list[int], log) -> Path:
    from fprt.export import build_engine

    out = onnx_path.with_name(f"{onnx_path.stem}.{precision}.plan")
    log(f"building TensorRT {precision} engine → {out}")
    result = build_engine(onnx_path, out, fp16=precision == "fp16", min_batch=min(batch_sizes), opt_batch=max(batch_sizes),
                          max_batch=max(batch_sizes), log=lambda line: log("  | " + line))
    return Path(getattr(result, "path", out))


# ---------------------------------------------------------------------------------------------- images
def eval_images(meta, data: Path | None, n: int, seed: int) -> tuple[np.ndarray, str]:
    """``n`` images (N×S×S uint8, resized by the model's Preprocess): from ``data`` (test split first,
    else the training split), spread deterministically, or synthetic CT-like slices without ``data``."""
    pre = meta.preprocess
    if data is None:
        from fprt.export.images import synthetic_images

        return synthetic_images(pre, n=n, seed=seed).pixels, f"{n} synthetic CT-like images (no --data)"
    from fprt.data import discover, iter_batches

    layout = discover(data)
    paths = list(layout.test_real) + list(layout.test_generated)
    split = "test"
    if not paths:
        paths = [p for ps in layout.real.values() for p in ps] + [p for ps in layout.generated.values() for p in ps]
        split = "training"
    if not paths:
        raise FprtError(f"--data {data}: holds no images to benchmark on")
    paths = sorted(paths)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False))
    chosen = [paths[i] for i in pick]
    pixels = np.concatenate([b.pixels for b in iter_batches(chosen, pre, 64, None)])
    return pixels, f"{len(chosen)} {split} images of {data}"


# ---------------------------------------------------------------------------------------------- runners
class _Autocast:
    """A runtime backend whose calls run under ``torch.autocast`` (torch fp16 / bf16 on the GPU).

    autocast is thread-local, so it is entered inside each call, on whichever thread makes it."""

    def __init__(self, backend, dtype) -> None:
        self._backend = backend
        self._dtype = dtype

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def _ctx(self):
        import torch

        return torch.autocast("cuda", dtype=self._dtype)

    def infer(self, pixels):
        with self._ctx():
            out = self._backend.infer(pixels)
        return {k: v.float() for k, v in out.items()}

    def pair_probability(self, a, b):
        with self._ctx():
            return self._backend.pair_probability(a, b).float()


def load_variant_backend(v: Variant, *, device: str, threads: int):
    """The runtime backend (``fprt.runtime.backends``) that serves ``v`` — what ``fprt score`` would load."""
    from fprt.runtime.backends import load_backend

    backend = load_backend(v.path, backend=v.format, device=device, threads=threads)
    if v.format == "torch" and v.precision in GPU_PRECISIONS:
        import torch

        backend = _Autocast(backend, torch.float16 if v.precision == "fp16" else torch.bfloat16)
    return backend


def make_runner(v: Variant, source: _Source, pixels: np.ndarray, *, batch: int, device: str, threads: int,
                backends: dict) -> Callable[[], Any]:
    """A no-argument callable running ``v`` on one batch: ``fprt.export.bench``'s runners on the CPU,
    the runtime backend + ``torch.cuda.synchronize()`` on the GPU."""
    from fprt.export import bench as B

    pre = source.meta.preprocess
    pair = source.meta.kind == "pair"
    if device == "cpu":
        if v.format == "torch":
            return B.torch_runner(source.module, pixels, pre, batch=batch, threads=threads, pair=pair)
        if v.format == "onnx":
            return B.ort_runner(str(v.path), pixels, pre, batch=batch, threads=threads)
        raise FprtError(f"{v.format} cannot run on the CPU")
    import torch

    if v.key not in backends:
        backends[v.key] = load_variant_backend(v, device=device, threads=threads)
    backend = backends[v.key]
    px = B._batch(pixels, batch)
    if pair:
        from fprt.export.ort import pair_partner

        partner = pair_partner(px)

        def step():
            backend.pair_probability(px, partner)
            torch.cuda.synchronize()
    else:

        def step():
            backend.infer(px)
            torch.cuda.synchronize()

    return step


def time_variants(variants: list[Variant], source: _Source, pixels: np.ndarray, *, batch_sizes: list[int], device: str,
                  threads: int, rounds: int | None, seconds: float, log) -> dict[tuple[str, int], Any]:
    """``{(variant key, batch): Throughput}``: per batch size every runnable variant, interleaved."""
    from fprt.export.bench import interleaved

    results: dict[tuple[str, int], Any] = {}
    gpu_backends: dict = {}
    for batch in batch_sizes:
        runners = {}
        for v in variants:
            if v.status != "ok":
                continue
            try:
                runners[(v.format, v.precision)] = make_runner(v, source, pixels, batch=batch, device=device, threads=threads,
                                                               backends=gpu_backends)
            except Exception as exc:  # noqa: BLE001 - a variant that cannot load is a failed row, not a crash
                v.fail(exc)
        if not runners:
            continue
        try:
            probe = interleaved(runners, batch=batch, threads=threads, rounds=1, warmup=1)
        except Exception:  # noqa: BLE001 - find which one fails, keep the others
            for key, fn in list(runners.items()):
                try:
                    fn()
                except Exception as exc:  # noqa: BLE001
                    next(v for v in variants if (v.format, v.precision) == key).fail(exc)
                    del runners[key]
            if not runners:
                continue
            probe = interleaved(runners, batch=batch, threads=threads, rounds=1, warmup=1)
        per_round = sum(t.p50_ms for t in probe.values()) / 1e3
        n = rounds or int(min(MAX_ROUNDS, max(MIN_ROUNDS, math.ceil(seconds / max(per_round, 1e-6)))))
        log(f"batch {batch}: {len(runners)} variant(s), {n} interleaved rounds (≈{per_round * n:.0f} s)")
        timed = interleaved(runners, batch=batch, threads=threads, rounds=n, warmup=0)
        for (fmt, prec), t in timed.items():
            results[(f"{fmt}-{prec}", batch)] = t
        del runners
    for b in gpu_backends.values():
        with contextlib.suppress(Exception):
            b.close()
    return results


# ---------------------------------------------------------------------------------------------- quality
def _host(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def variant_outputs(backend, pixels: np.ndarray, chunk: int = 32) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for s in range(0, len(pixels), chunk):
        for name, value in backend.infer(pixels[s : s + chunk]).items():
            parts.setdefault(name, []).append(_host(value).reshape(min(chunk, len(pixels) - s), -1))
    return {k: np.concatenate(v) for k, v in parts.items()}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine of two N×D arrays, in float64 (a zero row against a zero row counts as 1)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    cos[(na == 0) & (nb == 0)] = 1.0
    cos[((na == 0) ^ (nb == 0))] = 0.0
    return cos


def _labels_file(data: Path | None) -> Path | None:
    if data is None:
        return None
    from fprt.data import discover
    from fprt.errors import DataError

    try:
        layout = discover(data)
    except DataError:
        return None
    if not layout.has_test:
        return None
    test_root = getattr(layout, "test_root", None)
    candidates = [Path(test_root) / "labels.csv"] if test_root else []
    candidates += [Path(data) / "test" / "labels.csv", Path(data) / "labels.csv"]
    return next((c for c in candidates if c.is_file()), None)


def measure_quality(variants: list[Variant], pixels: np.ndarray, *, device: str, threads: int, data: Path | None,
                    accuracy: bool, log) -> tuple[str | None, str]:
    """Cosine of every variant's outputs to the reference variant, and accuracy on ``data``'s labels.
    Returns ``(drift reference key, accuracy note)``."""
    ok = [v for v in variants if v.status == "ok"]
    ref = next((v for key in ("torch-fp32", "onnx-fp32") for v in ok if v.key == key), None)
    labels = _labels_file(data) if accuracy else None
    note = ""
    if accuracy and data is not None and labels is None:
        note = f"accuracy: --data {data} has no test split with labels.csv: not measured"
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for v in ([ref] if ref else []) + [v for v in ok if v is not ref]:
        try:
            backend = load_variant_backend(v, device=device, threads=threads)
        except Exception as exc:  # noqa: BLE001
            v.fail(exc)
            continue
        try:
            outputs[v.key] = variant_outputs(backend, pixels)
            if ref is not None and v is not ref and ref.key in outputs:
                v.cosine = {}
                for name, rows in outputs[v.key].items():
                    base = outputs[ref.key].get(name)
                    if base is not None and base.shape == rows.shape:
                        cos = cosine_rows(rows, base)
                        v.cosine[name] = {"mean": float(np.mean(cos)), "min": float(np.min(cos))}
            if labels is not None:
                log(f"accuracy of {v.key} on {labels}")
                v.metrics = _accuracy(backend, v, data, labels)
                v.accuracy = v.metrics.get("accuracy")
        except Exception as exc:  # noqa: BLE001 - a variant whose outputs fail is a failed row
            v.fail(exc)
        finally:
            with contextlib.suppress(Exception):
                backend.close()
    if labels is not None:
        method = next((v.metrics.get("method") for v in variants if v.metrics), None)
        note = f"accuracy: `fprt score` (method {method}) through each variant on {labels}"
    return (ref.key if ref else None), note


def _model_rule(meta) -> str | None:
    """The model's own decision rule, not ``auto``: the bench compares variants of one model, and auto's
    pixel and fingerprint evidence would not depend on the variant."""
    if meta.task == "subsets":
        return "classifier" if meta.kind == "classifier" else "centroid"
    return None


def _accuracy(backend, v: Variant, data: Path, labels: Path) -> dict:
    from fprt.runtime import score

    with tempfile.TemporaryDirectory(prefix="fprt-bench-score-") as tmp:
        result = score(str(v.path), data, Path(tmp) / "out", labels=labels, model_object=backend, use_cache=False,
                       plots=False, progress=False, backend=v.format, method=_model_rule(backend.meta))
    metrics = {k: val for k, val in (result.metrics or {}).items() if isinstance(val, (int, float)) or val is None}
    return {"method": result.method, **metrics}


# ---------------------------------------------------------------------------------------------- the command
def run_bench(
    model: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    batch_sizes: str | Sequence[int] | None = None,
    backends: str | Sequence[str] | None = None,
    precisions: str | Sequence[str] | None = None,
    device: str = "cpu",
    threads: int | None = None,
    rounds: int | None = None,
    seconds: float = DEFAULT_SECONDS,
    images: int = DEFAULT_IMAGES,
    accuracy: bool = True,
    seed: int = 0,
    work_dir: str | os.PathLike | None = None,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
) -> BenchReport:
    """Benchmark MODEL in every format × precision of the format table at each batch size (module docstring)."""
    from fprt.runtime.backends import check_device, physical_cores

    log = log or (lambda line: None)
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = load_average()
    device = check_device(device)
    batches = parse_batch_sizes(batch_sizes)
    backend_names = parse_backends(backends)
    precision_names = parse_precisions(precisions)
    if threads is not None and threads < 1:
        raise FprtError(f"--threads must be ≥ 1, got {threads}")
    if rounds is not None and rounds < 1:
        raise FprtError(f"--rounds must be ≥ 1, got {rounds}")
    if images < 1:
        raise FprtError(f"--images must be ≥ 1, got {images}")
    threads = threads or physical_cores()
    data_path = Path(data) if data is not None else None
    if data_path is not None and not data_path.is_dir():
        raise FprtError(f"--data {data_path}: no such dataset folder")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise MissingDependencyError(
                f"--device cuda: torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda or 'none'}); use --device cpu"
            )

    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    source = _load_source(model)
    meta = source.meta
    calib = _calibration_folder(source, data_path)
    variants = plan_variants(source, device=device, backends=backend_names, precisions=precision_names, calib=calib)
    if not variants:
        raise FprtError("no format × precision left to benchmark: check --backends and --precisions against "
                        "`fprt bench --help` (torch: fp32/fp16/bf16; onnx: fp32/fp16/int8; tensorrt: fp32/fp16)")
    prepare_files(source, variants, device=device, data=data_path, calib=calib, batch_sizes=batches,
                  work_dir=Path(work_dir) if work_dir else None, log=log)
    pixels, image_source = eval_images(meta, data_path, images, seed)
    log(f"images: {image_source}")

    drift_ref, accuracy_note = measure_quality(variants, pixels, device=device, threads=threads, data=data_path,
                                               accuracy=accuracy, log=log)
    timings = time_variants(variants, source, pixels, batch_sizes=batches, device=device, threads=threads, rounds=rounds,
                            seconds=seconds, log=log)

    speed_ref = next((k for k in ("torch-fp32", "onnx-fp32") if any(v.key == k and v.status == "ok" for v in variants)), None)
    rows: list[BenchRow] = []
    for v in variants:
        cos = (v.cosine or {}).get("embedding") or next(iter((v.cosine or {}).values()), None)
        if v.cosine:
            mins = [c["min"] for c in v.cosine.values()]
            cos = {"min": min(mins), "mean": cos["mean"] if cos else None}
        common = dict(accuracy=v.accuracy, cos_min=cos["min"] if cos else None, cos_mean=cos["mean"] if cos else None,
                      size_mb=v.size_bytes / 2**20 if v.size_bytes else None)
        if v.status != "ok":
            rows.append(BenchRow(v.format, v.precision, None, v.status, v.reason, **common))
            continue
        for b in batches:
            t = timings.get((v.key, b))
            if t is None:
                rows.append(BenchRow(v.format, v.precision, b, "failed", "not timed (see the JSON's variant notes)", **common))
                continue
            rows.append(BenchRow(v.format, v.precision, b, "ok", "", p50_ms=t.p50_ms, p99_ms=t.p99_ms,
                                 images_per_s=t.images_per_s, rounds=t.repeats, **common))
    for r in rows:
        ref_row = next((x for x in rows if x.key == speed_ref and x.batch == r.batch and x.status == "ok"), None)
        if r.status == "ok" and ref_row is not None and ref_row.images_per_s:
            r.speedup = r.images_per_s / ref_row.images_per_s
    machine = machine_info(device)
    machine["load_before"] = load_before
    machine["load_after"] = load_average()
    notes = []
    busy = max(x for x in (load_before, machine["load_after"], 0.0) if x is not None)
    if device == "cpu" and busy > machine["physical_cores"]:
        notes.append(f"the machine was busy (load average up to {busy:.1f} on {machine['physical_cores']} physical cores): "
                     f"multi-threaded timings suffer from thread-barrier waits (PyTorch's OpenMP most); "
                     f"compare with --threads 1 and re-run on a quiet machine for absolute numbers.")
    if device == "cpu":
        notes.append(f"timing: the model alone on pre-decoded, pre-normalised batches; PyTorch eager and ONNX Runtime "
                     f"(CPU EP, full graph optimisation) with {threads} intra-op threads each.")
    else:
        notes.append("timing: the runtime backend's infer on uint8 batches (upload + normalisation + model), "
                     "each call ended by torch.cuda.synchronize().")
    return BenchReport(
        model=str(model), model_name=meta.model, kind=meta.kind, task=meta.task, source=source.kind, device=device,
        threads=threads, batch_sizes=batches, images=image_source, n_images=int(len(pixels)),
        data=str(data_path) if data_path else None, speed_reference=speed_ref, drift_reference=drift_ref,
        variants=variants, rows=rows, machine=machine, started=started,
        finished=time.strftime("%Y-%m-%d %H:%M:%S %Z"), seconds=round(time.perf_counter() - t0, 1),
        command=command or "fprt.runtime.bench.run_bench(" + repr(str(model)) + ")", accuracy_note=accuracy_note, notes=notes,
    )


# ---------------------------------------------------------------------------------------------- helpers
def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def _one_line(exc: BaseException | str) -> str:
    text = str(exc).strip() or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, BaseException) and not isinstance(exc, FprtError):
        first = f"{type(exc).__name__}: {first}"
    return first[:300]


def command_line(argv: Iterable[str] | None = None, *, command_path: str = "fprt bench", params: dict | None = None,
                 positional: tuple[str, ...] = ("model",)) -> str:
    """The command as the user typed it (``fprt bench ...``), for the report.

    When this process is not ``fprt`` itself (the CLI called in-process, e.g. from a notebook or a test),
    the command is rebuilt from ``command_path`` and the parsed ``params`` instead of ``sys.argv``.
    """
    import shlex

    argv = list(sys.argv if argv is None else argv)
    first = Path(argv[0]) if argv else Path("fprt")
    is_fprt = first.name == "fprt" or (first.name == "__main__.py" and first.parent.name == "fprt")
    prog = "fprt" if is_fprt or first.name in ("__main__.py", "-c") or first.name.startswith("python") else first.name
    if not is_fprt and params is not None:
        parts = [command_path]
        for key, value in params.items():
            if value is None or value is False or value == ():
                continue
            flag = "--" + key.replace("_", "-")
            if key in positional:
                parts.append(shlex.quote(str(value)))
            elif value is True:
                parts.append(flag)
            else:
                values = value if isinstance(value, (list, tuple)) else [value]
                parts.extend(f"{flag} {shlex.quote(str(v))}" for v in values)
        return " ".join(parts)
    return " ".join([prog] + [shlex.quote(a) for a in argv[1:]])


__all__ = [
    "BenchReport",
    "BenchRow",
    "Variant",
    "DEFAULT_BATCHES",
    "machine_info",
    "parse_backends",
    "parse_batch_sizes",
    "parse_precisions",
    "plan_variants",
    "run_bench",
]

