"""TensorRT engines: ``fprt build-engine`` and the runner the runtime serves ``.plan`` files with.

This is the only fprt module that imports ``tensorrt`` (lazily, inside functions), so ``import fprt``
and everything else work without it. Without TensorRT or a CUDA GPU every entry point raises
``MissingDependencyError`` saying what is missing and how to get it (``pip install 'fprt[gpu]'``).

NOT YET RUN: this module is written against the documented TensorRT 10 and 11 Python APIs but has never
run against a real TensorRT on a GPU (fprt's development machines have neither; TensorRT's wheels are
not installable there). Its tests drive it with fake ``tensorrt`` module and engine objects that have the
documented methods; the first run on a GPU machine is the real test.

API used (TensorRT 10.x and 11.x Python):

- build: ``Logger``, ``Builder(logger)``, ``Builder.create_network(flags)``, ``OnnxParser(network,
  logger).parse(bytes)`` / ``num_errors`` / ``get_error(i)``, ``create_builder_config()``,
  ``create_optimization_profile()`` + ``set_shape(name, min, opt, max)`` + ``add_optimization_profile``,
  ``create_timing_cache(bytes)`` + ``set_timing_cache(cache, ignore_mismatch=False)`` +
  ``ITimingCache.serialize()``, ``build_serialized_network(network, config)`` (``None`` on failure).
- precision: TensorRT 11 networks are always strongly typed (``STRONGLY_TYPED`` is deprecated and
  ignored there, ``BuilderFlag.FP16`` is gone), so FP16 means building from an FP16 ONNX — fprt
  converts an fp32 ONNX itself (``fprt.export.precision.to_fp16``). On TensorRT 10 an fp32 ONNX
  with ``--fp16`` uses ``BuilderFlag.FP16`` (weak typing, still supported there), an FP16 ONNX is built
  with ``STRONGLY_TYPED``; ``EXPLICIT_BATCH`` is gone since 10 (networks are always explicit batch).
- run: ``Runtime(logger).deserialize_cuda_engine(bytes)``, ``create_execution_context()``,
  name-based I/O ``num_io_tensors`` / ``get_tensor_name(i)`` / ``get_tensor_mode(name)`` /
  ``get_tensor_dtype(name)`` / ``get_tensor_profile_shape(name, 0)``, ``set_input_shape``,
  ``get_tensor_shape``, ``set_tensor_address(name, ptr)``, ``execute_async_v3(stream_handle)`` on a
  dedicated stream ordered both ways against torch's current stream (``fprt.export.cuda_ops.StreamBridge``;
  never the legacy default stream), inside a device guard for the engine's GPU; no pycuda: one CUDA
  context shared with torch and fprt's extension.
- precision: ``IBuilderConfig.clear_flag(BuilderFlag.TF32)`` for fp32 engines (TF32 is on by default and
  would move an "fp32" engine ~1e-3 away from ONNX Runtime's fp32).
- CUDA graphs: a captured engine gets its own execution context (TensorRT requires re-capture when a
  context's shapes change; eager calls of other batch sizes use the runner's context).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fprt.errors import FprtError, MissingDependencyError, ModelError
from fprt.export.cuda_ops import StreamBridge, TorchCuda
from fprt.export.engine_cache import BatchProfile, EngineCache, EngineKey, engine_matches, read_sidecar, write_sidecar

INSTALL_HINT = "install it with `pip install 'fprt[gpu]'` on a machine with an NVIDIA GPU and driver"
def _engine_suffixes() -> tuple[str, ...]:
    from fprt.formats import get_format

    return get_format("tensorrt").suffixes  # the shared format table (.plan, .engine)


ENGINE_SUFFIXES = _engine_suffixes()


# ---------------------------------------------------------------- environment
def import_tensorrt():
    """The ``tensorrt`` module (10.x or 11.x); ``MissingDependencyError`` otherwise."""
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        raise MissingDependencyError(
            f"TensorRT is not installed ({type(exc).__name__}: {exc}); {INSTALL_HINT}. "
            "Without a GPU, serve the .onnx file with ONNX Runtime instead."
        ) from None
    trt_major(trt)
    return trt


def trt_major(trt) -> int:
    version = str(getattr(trt, "__version__", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < 10:
        raise MissingDependencyError(f"TensorRT {version} is too old: fprt needs TensorRT 10 or 11; {INSTALL_HINT}")
    return major


def cuda_device(device=None) -> tuple[Any, str, str]:
    """``(torch.device, GPU name, compute capability "M.m")``; ``MissingDependencyError`` without a CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        raise MissingDependencyError(
            "no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False): TensorRT engines are built and "
            f"run on an NVIDIA GPU; {INSTALL_HINT}, or serve the .onnx file with ONNX Runtime on the CPU"
        )
    dev = torch.device(device if device is not None else "cuda")
    if dev.type != "cuda":
        raise FprtError(f"TensorRT runs on CUDA devices only, got device {device!r}")
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return torch.device("cuda", index), torch.cuda.get_device_name(index), f"{major}.{minor}"


# ---------------------------------------------------------------- build planning (pure)
@dataclass(frozen=True)
class BuildPlan:
    precision: str
    """``fp32`` or ``fp16``: what the engine computes in."""
    strongly_typed: bool
    """The network is strongly typed (always on TensorRT 11; on 10 for FP16 ONNX files)."""
    fp16_flag: bool
    """``BuilderFlag.FP16`` is set (TensorRT 10 only)."""
    convert_fp16: bool
    """fprt converts the fp32 ONNX to FP16 before parsing (TensorRT 11 with ``--fp16``)."""


def plan_build(major: int, onnx_precision: str, fp16: bool) -> BuildPlan:
    """How to build an engine of ``onnx_precision`` on TensorRT ``major`` with or without ``--fp16``."""
    if onnx_precision == "int8":
        raise ModelError(
            "this ONNX file is INT8 QDQ made for ONNX Runtime's CPU EP (uint8 asymmetric activations); TensorRT needs "
            "symmetric int8: build the engine from the fp32 or fp16 export instead"
        )
    if onnx_precision == "fp16":
        return BuildPlan("fp16", strongly_typed=True, fp16_flag=False, convert_fp16=False)
    if onnx_precision != "fp32":
        raise ModelError(f"unknown ONNX precision {onnx_precision!r}")
    if not fp16:
        return BuildPlan("fp32", strongly_typed=major >= 11, fp16_flag=False, convert_fp16=False)
    if major >= 11:
        return BuildPlan("fp16", strongly_typed=True, fp16_flag=False, convert_fp16=True)
    return BuildPlan("fp16", strongly_typed=False, fp16_flag=True, convert_fp16=False)


def network_flags(trt, major: int, plan: BuildPlan) -> int:
    """``create_network`` flags: ``STRONGLY_TYPED`` on TensorRT 10 when wanted, 0 otherwise (11: always strongly typed)."""
    if plan.strongly_typed and major == 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def build_serialized(
    trt,
    onnx_bytes: bytes,
    *,
    plan: BuildPlan,
    profile: BatchProfile,
    sample_shapes: dict[str, tuple[int, ...]],
    timing_cache: bytes | None = None,
    workspace_bytes: int | None = None,
    source: str = "model.onnx",
) -> tuple[bytes, bytes]:
    """Parse ``onnx_bytes`` and build a serialized engine → ``(plan bytes, timing cache bytes)``."""
    major = trt_major(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, major, plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelError(f"{source}: TensorRT's ONNX parser failed: {'; '.join(errors) or 'no details'}")
    config = builder.create_builder_config()
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default: an fp32 engine computes in fp32
    if workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in sample_shapes:
            raise ModelError(f"{source}: TensorRT sees input {name!r}, the ONNX metadata knows {sorted(sample_shapes)}")
        opt_profile.set_shape(name, *profile.shapes(sample_shapes[name]))
    config.add_optimization_profile(opt_profile)
    cache = config.create_timing_cache(bytes(timing_cache or b""))
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"{source}: TensorRT failed to build an engine (see TensorRT's log above)")
    return bytes(serialized), bytes(cache.serialize())


# ---------------------------------------------------------------- build_engine
@dataclass
class EngineResult:
    path: Path
    key: EngineKey
    plan: BuildPlan
    profile: BatchProfile
    reused: str | None = None
    """``None`` when built now, else where the engine came from (``"--out"`` or the cache path)."""
    timing_cache: Path | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        how = "built" if self.reused is None else f"reused ({self.reused}; key matches)"
        out = [
            f"engine {self.path}: {how}",
            f"  TensorRT {self.key.tensorrt_version} on {self.key.gpu_name} (sm {self.key.compute_capability}), "
            f"{self.plan.precision}, {'strongly typed' if self.plan.strongly_typed else 'weakly typed + FP16 flag' if self.plan.fp16_flag else 'fp32'}"
            f"{', TF32 off' if self.plan.precision == 'fp32' else ''}",
            f"  batch profile: {self.profile.describe()}",
        ]
        if self.timing_cache:
            out.append(f"  timing cache: {self.timing_cache}")
        return out + [f"  note: {n}" for n in self.notes]


def _sample_shapes(proto) -> dict[str, tuple[int, ...]]:
    from fprt.export.metadata import graph_io

    shapes = {}
    for name, info in graph_io(proto)["inputs"].items():
        dims = info["shape"]
        if not dims or any(not isinstance(d, int) or d < 1 for d in dims[1:]):
            raise ModelError(f"input {name!r} has shape {dims}: only the batch axis may be dynamic")
        shapes[name] = tuple(dims[1:])
    return shapes


def build_engine(
    onnx: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fp16: bool = False,
    min_batch: int | None = None,
    opt_batch: int | None = None,
    max_batch: int | None = None,
    timing_cache: str | os.PathLike | None = None,
    workspace_gb: float | None = None,
    use_cache: bool = True,
    rebuild: bool = False,
    device=None,
    log: Callable[[str], None] | None = None,
    _trt=None,
    _device_info: tuple[Any, str, str] | None = None,
    _cuda=None,
) -> EngineResult:
    """Build (or reuse) a TensorRT engine for an fprt ONNX file; see the module docstring.

    Reuse: when ``out`` or the engine cache already holds an engine with the same ``EngineKey``
    (TensorRT version, GPU, compute capability, ONNX sha256, precision, profile), it is used as is;
    any mismatch rebuilds. ``_trt``/``_device_info``/``_cuda`` let tests inject fakes. The build runs with
    ``device`` current, so the engine is built on the GPU whose name the key records.
    """
    from fprt.export.metadata import export_info, read_onnx
    from fprt.export.precision import graph_precision, to_fp16
    from fprt.io import atomic_write_bytes, sha256_bytes

    log = log or (lambda line: print(line, flush=True))
    onnx, out = Path(onnx), Path(out)
    if out.suffix.lower() not in ENGINE_SUFFIXES:
        raise FprtError(f"--out {out}: a TensorRT engine file name must end in {' or '.join(ENGINE_SUFFIXES)}")
    profile = BatchProfile.choose(min_batch, opt_batch, max_batch)
    proto, meta = read_onnx(onnx)
    onnx_precision = export_info(meta).get("precision") or graph_precision(proto)
    if onnx_precision == "int8":
        plan_build(10, "int8", fp16)  # raises the explanation, before asking for TensorRT
    sample_shapes = _sample_shapes(proto)

    trt = _trt if _trt is not None else import_tensorrt()
    major = trt_major(trt)
    dev, gpu_name, capability = _device_info if _device_info is not None else cuda_device(device)
    cuda = _cuda if _cuda is not None else TorchCuda()
    plan = plan_build(major, onnx_precision, fp16)
    notes = []
    if plan.convert_fp16:
        proto = to_fp16(proto)
        notes.append("TensorRT 11 is strongly typed: built from an FP16 conversion of the fp32 ONNX (float32 I/O kept)")
    onnx_bytes = proto.SerializeToString()
    key = EngineKey(
        tensorrt_version=str(trt.__version__),
        gpu_name=gpu_name,
        compute_capability=capability,
        onnx_sha256=sha256_bytes(onnx_bytes),
        precision=plan.precision,
        profile=tuple(profile.as_list()),
        strongly_typed=plan.strongly_typed,
    )
    meta_dict = meta.to_dict()
    io = {"inputs": {k: list(v) for k, v in sample_shapes.items()}, "profile": profile.as_list()}
    cache = EngineCache() if use_cache else None
    result = EngineResult(path=out, key=key, plan=plan, profile=profile, notes=notes)

    if not rebuild:
        ok, why = engine_matches(out, key)
        if ok:
            result.reused = "--out"
            return _report(result, log)
        if out.exists():
            notes.append(f"rebuilt {out}: {why}")
        cached = cache.lookup(key) if cache else None
        if cached is not None:
            data = cached.read_bytes()
            atomic_write_bytes(out, data)
            write_sidecar(out, key, sha256_bytes(data), meta_dict, io)
            result.reused = f"cache {cached}"
            return _report(result, log)

    tc_path = Path(timing_cache) if timing_cache else None
    tc_bytes = tc_path.read_bytes() if tc_path and tc_path.exists() else None
    with cuda.device(dev):
        plan_bytes, tc_new = build_serialized(
            trt,
            onnx_bytes,
            plan=plan,
            profile=profile,
            sample_shapes=sample_shapes,
            timing_cache=tc_bytes,
            workspace_bytes=int(workspace_gb * (1 << 30)) if workspace_gb else None,
            source=str(onnx),
        )
    atomic_write_bytes(out, plan_bytes)
    write_sidecar(out, key, sha256_bytes(plan_bytes), meta_dict, io)
    if tc_path is not None:
        atomic_write_bytes(tc_path, tc_new)
        result.timing_cache = tc_path
    if cache is not None:
        cache.store(key, plan_bytes, meta_dict, io)
    return _report(result, log)


def _report(result: EngineResult, log) -> EngineResult:
    for line in result.lines():
        log(line)
    return result


# ---------------------------------------------------------------- running
_TORCH_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


def torch_dtype(trt_dtype):
    """A TensorRT ``DataType`` → the torch dtype of the buffer bound to it."""
    import torch

    name = getattr(trt_dtype, "name", None) or str(trt_dtype).rsplit(".", 1)[-1]
    if name not in _TORCH_DTYPES:
        raise ModelError(f"engine tensor type {name} has no torch buffer type in fprt")
    return getattr(torch, _TORCH_DTYPES[name])


def _is_input(mode) -> bool:
    name = getattr(mode, "name", None) or str(mode).rsplit(".", 1)[-1]
    return name == "INPUT"


class TensorRTRunner:
    """Runs a deserialized engine on torch tensors: binds device pointers by tensor name and enqueues
    ``execute_async_v3`` on its own stream, ordered both ways against torch's current stream (outputs are
    ready in torch's stream order), with the engine's GPU current.

    ``cuda``: the CUDA operations (default ``TorchCuda``; tests pass ``fake_tensorrt.FakeCuda``);
    ``device="cpu"`` + a fake engine is how the tests drive it.
    """

    def __init__(self, engine, *, device="cuda", cuda=None, source: str = "engine"):
        import torch

        self.engine = engine
        self.source = source
        self.device = torch.device(device)
        self.cuda = cuda if cuda is not None else TorchCuda()
        with self.cuda.device(self.device):
            self.context = engine.create_execution_context()
            if self.context is None:
                raise ModelError(f"{source}: TensorRT could not create an execution context (out of GPU memory?)")
            self.bridge = StreamBridge(self.cuda, self.device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if _is_input(engine.get_tensor_mode(n))]
        self.outputs = [n for n in names if not _is_input(engine.get_tensor_mode(n))]
        self.dtypes = {n: torch_dtype(engine.get_tensor_dtype(n)) for n in names}
        lo, opt, hi = engine.get_tensor_profile_shape(self.inputs[0], 0)
        self.profile = BatchProfile(int(lo[0]), int(opt[0]), int(hi[0]))
        self.sample_shapes = {n: tuple(int(d) for d in engine.get_tensor_profile_shape(n, 0)[1][1:]) for n in self.inputs}
        self._keep: list = []

    def _bind(self, tensors, context=None) -> tuple[dict, dict]:
        import torch

        context = context if context is not None else self.context
        if isinstance(tensors, dict):
            missing = set(self.inputs) - set(tensors)
            if missing:
                raise ModelError(f"{self.source}: missing input(s) {sorted(missing)}; the engine takes {self.inputs}")
            tensors = [tensors[n] for n in self.inputs]
        if len(tensors) != len(self.inputs):
            raise ModelError(f"{self.source}: got {len(tensors)} input tensor(s), the engine takes {self.inputs}")
        batch = int(tensors[0].shape[0])
        self.profile.check(batch, source=self.source)
        bound_in = {}
        for name, t in zip(self.inputs, tensors):
            if tuple(t.shape[1:]) != self.sample_shapes[name] or int(t.shape[0]) != batch:
                raise ModelError(
                    f"{self.source}: input {name!r} has shape {tuple(t.shape)}, expected ({batch}, "
                    f"{', '.join(map(str, self.sample_shapes[name]))})"
                )
            t = t.to(self.device, self.dtypes[name]).contiguous()
            if not context.set_input_shape(name, tuple(int(d) for d in t.shape)):
                raise ModelError(f"{self.source}: TensorRT refused shape {tuple(t.shape)} for input {name!r}")
            context.set_tensor_address(name, int(t.data_ptr()))
            bound_in[name] = t
        bound_out = {}
        for name in self.outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ModelError(f"{self.source}: output {name!r} has unresolved shape {shape}")
            o = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            context.set_tensor_address(name, int(o.data_ptr()))
            bound_out[name] = o
        return bound_in, bound_out

    def _execute(self, tensors=(), context=None) -> None:
        context = context if context is not None else self.context
        with self.bridge.enqueue(tensors) as handle:
            if not context.execute_async_v3(handle):
                raise ModelError(f"{self.source}: TensorRT execute_async_v3 failed")

    def __call__(self, *tensors, **named) -> dict:
        """Run one batch → ``{output name: tensor}`` on ``device`` (asynchronous in torch's stream order)."""
        with self.cuda.device(self.device):
            bound_in, bound_out = self._bind(named if named else list(tensors))
            self._keep = [bound_in]  # inputs must outlive the enqueued work
            self._execute(list(bound_in.values()) + list(bound_out.values()))
        return bound_out

    def capture(self, batch: int) -> "CapturedEngine":
        """A CUDA graph of one ``batch``-sized run on its own execution context (static buffers;
        ``CapturedEngine.run`` copies in and replays)."""
        return CapturedEngine(self, batch)


class CapturedEngine:
    """A CUDA graph of the engine at a fixed batch: ``run(*tensors)`` copies into static inputs and replays.

    The graph has its own execution context: eager calls of the runner (any batch size) change their
    context's shapes, never this one's, so the graph never needs a re-capture."""

    def __init__(self, runner: TensorRTRunner, batch: int):
        import torch

        runner.profile.check(batch, source=runner.source)
        self.runner = runner
        self.batch = batch
        cuda = runner.cuda
        with cuda.device(runner.device):
            self.context = runner.engine.create_execution_context()
            if self.context is None:
                raise ModelError(f"{runner.source}: TensorRT could not create an execution context for the CUDA graph")
            self.static_in = [
                torch.zeros((batch, *runner.sample_shapes[n]), dtype=runner.dtypes[n], device=runner.device)
                for n in runner.inputs
            ]
            _, self.static_out = runner._bind(self.static_in, self.context)
            runner._execute(self.static_in, self.context)  # one run before capture, as TensorRT requires
            cuda.synchronize(runner.device)

            def enqueue(handle: int) -> None:
                if not self.context.execute_async_v3(handle):
                    raise ModelError(f"{runner.source}: TensorRT execute_async_v3 failed during CUDA graph capture")

            self.replay = cuda.capture(runner.device, enqueue)

    def run(self, *tensors) -> dict:
        if len(tensors) != len(self.static_in):
            raise ModelError(f"{self.runner.source}: got {len(tensors)} inputs, the engine takes {self.runner.inputs}")
        for dst, src in zip(self.static_in, tensors):
            if tuple(src.shape) != tuple(dst.shape):
                raise ModelError(f"{self.runner.source}: captured for shape {tuple(dst.shape)}, got {tuple(src.shape)}")
        with self.runner.cuda.device(self.runner.device):
            for dst, src in zip(self.static_in, tensors):
                dst.copy_(src, non_blocking=True)
            self.replay()
        return self.static_out


def load_engine(path: str | os.PathLike, *, device=None, cuda=None, _trt=None, _device_info=None):
    """``(TensorRTRunner, ModelMeta)`` for an engine written by ``build_engine``.

    Refuses (``ModelError``) an engine built for another TensorRT version, GPU or compute capability, or
    whose bytes do not match its record — rebuild it with ``fprt build-engine`` on this machine.
    """
    from fprt.io import sha256_file
    from fprt.modelmeta import ModelMeta

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such engine file")
    data = read_sidecar(path)
    key = EngineKey.from_dict(data["key"])
    trt = _trt if _trt is not None else import_tensorrt()
    dev, gpu_name, capability = _device_info if _device_info is not None else cuda_device(device)
    problems = key.machine_mismatches(tensorrt_version=str(trt.__version__), gpu_name=gpu_name, compute_capability=capability)
    if problems:
        raise ModelError(f"{path}: built for another machine ({'; '.join(problems)}); rebuild it here with `fprt build-engine`")
    if sha256_file(path) != data["plan_sha256"]:
        raise ModelError(f"{path}: the engine file does not match its record (torn or modified); rebuild it with `fprt build-engine`")
    cuda = cuda if cuda is not None else TorchCuda()
    logger = trt.Logger(trt.Logger.WARNING)
    with cuda.device(dev):  # the engine lives on the GPU its key names
        engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise ModelError(f"{path}: TensorRT could not deserialize the engine; rebuild it with `fprt build-engine`")
    meta = ModelMeta.from_dict(data["meta"])
    return TensorRTRunner(engine, device=dev, cuda=cuda, source=str(path)), meta
