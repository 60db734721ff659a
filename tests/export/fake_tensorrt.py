"""A stand-in for the ``tensorrt`` module with the documented TensorRT 10 / 11 Python API surface that
``fprt.export.tensorrt`` uses, recording every call. Engines it "builds" are JSON; the execution context
really reads its inputs from, and writes its outputs to, the raw addresses it was given, so a wrong
binding (address, shape, dtype) gives wrong numbers.

Differences between the versions that matter to fprt: 10.x has ``BuilderFlag.FP16`` and a meaningful
``STRONGLY_TYPED`` creation flag; 11.x has no precision builder flags (``BuilderFlag`` lacks ``FP16``) and
ignores ``STRONGLY_TYPED``. Both have ``BuilderFlag.TF32``, set in a new builder config (TensorRT's default).

``FakeCuda`` stands in for ``fprt.export.cuda_ops.TorchCuda`` on the CPU: device guards (``current_device``),
streams with integer handles, ``wait`` / ``keep_alive`` / graph capture, all recorded in ``events``. The fake
TensorRT objects made with ``make_fake_trt(..., cuda=fake)`` record the current device at every call that
must happen on the engine's GPU (build, deserialize, create context, execute).
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import json
import types

import numpy as np


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    INT64 = 9


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.UINT8: np.uint8}
_ONNX_TO_TRT = {1: DataType.FLOAT, 10: DataType.HALF, 2: DataType.UINT8}


class FakeStream:
    def __init__(self, handle: int, device):
        self.handle = handle
        self.device = device

    def __repr__(self):
        return f"stream{self.handle}"


class FakeCuda:
    """The ``TorchCuda`` interface on the CPU, recording what the calling code does."""

    def __init__(self):
        self.current_device = None
        self.events: list[tuple] = []
        self._next = 100
        self.torch_stream = FakeStream(7, None)  # "torch's current stream"

    @contextlib.contextmanager
    def device(self, device):
        prev = self.current_device
        self.current_device = str(device)
        self.events.append(("device", str(device)))
        try:
            yield
        finally:
            self.current_device = prev

    def new_stream(self, device):
        self._next += 1
        s = FakeStream(self._next, str(device))
        self.events.append(("new_stream", s.handle, self.current_device))
        return s

    def current_stream(self, device):
        return self.torch_stream

    def handle(self, stream) -> int:
        return stream.handle

    def wait(self, waiter, waitee) -> None:
        self.events.append(("wait", waiter.handle, waitee.handle))

    def keep_alive(self, tensor, stream) -> None:
        self.events.append(("keep_alive", stream.handle))

    def capture(self, device, enqueue):
        self._next += 1
        handle = self._next
        self.events.append(("capture", handle))
        enqueue(handle)
        return lambda: (self.events.append(("replay", handle)), enqueue(handle))

    def synchronize(self, device) -> None:
        self.events.append(("synchronize", str(device)))


def make_fake_trt(version: str = "10.9.0", cuda: FakeCuda | None = None):
    major = int(version.split(".")[0])
    calls: list[tuple] = []
    cuda = cuda if cuda is not None else FakeCuda()

    def on_device():
        return cuda.current_device

    class NetworkDefinitionCreationFlag(enum.IntEnum):
        STRONGLY_TYPED = 1

    if major >= 11:
        class BuilderFlag(enum.Enum):  # no precision flags in 11 (TF32 is a math mode, still there)
            REFIT = 1
            TF32 = 2
    else:
        class BuilderFlag(enum.Enum):
            FP16 = 0
            REFIT = 1
            TF32 = 2

    class MemoryPoolType(enum.Enum):
        WORKSPACE = 0

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class Tensor:
        def __init__(self, name):
            self.name = name

    class Network:
        def __init__(self, flags):
            self.flags = flags
            self.inputs: list[Tensor] = []
            self.onnx = None

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, i):
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network, logger):
            self.network = network
            self.errors: list[str] = []

        def parse(self, data: bytes) -> bool:
            import onnx

            calls.append(("parse", len(data)))
            try:
                proto = onnx.load_from_string(data)
                if not proto.graph.node:
                    raise ValueError("empty graph")
            except Exception as exc:
                self.errors.append(f"ModelImporter: {exc}")
                return False
            self.network.onnx = proto
            inits = {t.name for t in proto.graph.initializer}
            self.network.inputs = [Tensor(i.name) for i in proto.graph.input if i.name not in inits]
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            calls.append(("set_shape", name, tuple(lo), tuple(opt), tuple(hi)))
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = bytes(data)

        def serialize(self):
            return self.data + b"+entry"

    class Config:
        def __init__(self):
            self.flags = {"TF32"}  # TensorRT's default: TF32 allowed
            self.profiles = []
            self.cache = None

        def set_flag(self, flag):
            calls.append(("set_flag", flag.name))
            self.flags.add(flag.name)

        def clear_flag(self, flag):
            calls.append(("clear_flag", flag.name))
            self.flags.discard(flag.name)

        def get_flag(self, flag):
            return flag.name in self.flags

        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool.name, size))

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes):
            calls.append(("create_timing_cache", bytes(data)))
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append(("set_timing_cache", ignore_mismatch))
            self.cache = cache
            return True

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("build", sorted(config.flags), on_device()))
            if len(config.profiles) != 1:
                return None
            proto = network.onnx
            inits = {t.name for t in proto.graph.initializer}
            tensors = []
            prof = config.profiles[0].shapes
            for i in proto.graph.input:
                if i.name in inits:
                    continue
                tensors.append({"name": i.name, "mode": "INPUT", "dtype": _ONNX_TO_TRT[i.type.tensor_type.elem_type].name,
                                "profile": [list(s) for s in prof[i.name]]})
            for o in proto.graph.output:
                dims = [d.dim_value for d in o.type.tensor_type.shape.dim][1:]
                tensors.append({"name": o.name, "mode": "OUTPUT", "dtype": "FLOAT", "sample_shape": dims})
            return json.dumps({"fake_engine": True, "tensors": tensors, "flags": network.flags}).encode()

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes):
            try:
                plan = json.loads(data)
            except ValueError:
                return None
            calls.append(("deserialize", on_device()))
            return FakeEngine(plan["tensors"], cuda=cuda, calls=calls)

    mod = types.SimpleNamespace(
        __version__=version,
        Logger=Logger,
        Builder=Builder,
        OnnxParser=OnnxParser,
        Runtime=Runtime,
        NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag,
        BuilderFlag=BuilderFlag,
        MemoryPoolType=MemoryPoolType,
        DataType=DataType,
        TensorIOMode=TensorIOMode,
        calls=calls,
        fake_cuda=cuda,
    )
    return mod


class FakeEngine:
    """Engine with name-based I/O. Each 2-D output row n is ``(d + 1) * mean(first input[n])``; a 1-D
    output is ``mean(input0[n]) - mean(input1[n])``."""

    def __init__(self, tensors: list[dict], cuda: FakeCuda | None = None, calls: list | None = None):
        self.tensors = tensors
        self.by_name = {t["name"]: t for t in tensors}
        self.cuda = cuda
        self.calls = calls if calls is not None else []
        self.contexts: list[FakeContext] = []

    @property
    def num_io_tensors(self):
        return len(self.tensors)

    def get_tensor_name(self, i):
        return self.tensors[i]["name"]

    def get_tensor_mode(self, name):
        return TensorIOMode[self.by_name[name]["mode"]]

    def get_tensor_dtype(self, name):
        return DataType[self.by_name[name]["dtype"]]

    def get_tensor_profile_shape(self, name, profile_index):
        assert profile_index == 0
        return [tuple(s) for s in self.by_name[name]["profile"]]

    def create_execution_context(self):
        self.calls.append(("create_execution_context", self.cuda.current_device if self.cuda else None))
        ctx = FakeContext(self)
        self.contexts.append(ctx)
        return ctx


class FakeContext:
    def __init__(self, engine: FakeEngine):
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.executions = 0
        self.streams: list[int] = []

    def set_input_shape(self, name, shape):
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)) or len(shape) != len(lo):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def _inputs(self):
        return [t for t in self.engine.tensors if t["mode"] == "INPUT"]

    def get_tensor_shape(self, name):
        t = self.engine.by_name[name]
        if t["mode"] == "INPUT":
            return self.shapes.get(name, (-1,))
        first = self._inputs()[0]["name"]
        if first not in self.shapes:
            return (-1, *t["sample_shape"])
        return (self.shapes[first][0], *t["sample_shape"])

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = int(ptr)
        return True

    def _read(self, name):
        t = self.engine.by_name[name]
        shape = self.shapes[name]
        dtype = _NP[DataType[t["dtype"]]]
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = (ctypes.c_char * n).from_address(self.addresses[name])
        return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape)

    def execute_async_v3(self, stream_handle):
        self.executions += 1
        self.streams.append(stream_handle)
        self.engine.calls.append(("execute", stream_handle, self.engine.cuda.current_device if self.engine.cuda else None))
        ins = [self._read(t["name"]).astype(np.float64) for t in self._inputs()]
        means = [x.reshape(len(x), -1).mean(1) for x in ins]
        for t in self.engine.tensors:
            if t["mode"] != "OUTPUT":
                continue
            if len(t["sample_shape"]) == 1:
                d = t["sample_shape"][0]
                out = means[0][:, None] * np.arange(1, d + 1)[None, :]
            else:
                out = means[0] - means[1]
            out = np.ascontiguousarray(out, dtype=np.float32)
            ctypes.memmove(self.addresses[t["name"]], out.ctypes.data, out.nbytes)
        return True
