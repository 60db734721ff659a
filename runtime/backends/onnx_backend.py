"""ONNX Runtime backend for ``.onnx`` files written by ``fprt export-onnx``.

- CPU: the CPU execution provider with ``intra_op_num_threads`` = physical cores, one inter-op
  thread and full graph optimisation (``ORT_ENABLE_ALL``).
- CUDA (``device="cuda"``): the CUDA EP (and the TensorRT EP first when ``ort_tensorrt=True`` and
  onnxruntime-gpu offers it). Inputs and outputs are bound to torch CUDA tensors through IOBinding,
  so embeddings never leave the GPU. ORT's ``user_compute_stream`` is fixed when the session is made, so
  each session gets its own stream (``fprt.export.cuda_ops.StreamBridge``), ordered both ways against
  whatever torch stream is current at each run. Asking for CUDA where onnxruntime
  has no CUDA EP (or the session silently fell back to the CPU) is an error, never a quiet fallback.

The providers actually in use are logged and recorded in ``describe()`` (summary.json).
Pair scorers load two graphs: the pair graph (``image_a``, ``image_b`` → ``probability``) and the
embed graph export writes beside it (``<model>.embed.onnx``) for the neighbour search.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from fprt.errors import MissingDependencyError, ModelError
from fprt.export.cuda_ops import StreamBridge, TorchCuda
from fprt.io import sha256_bytes
from fprt.modelmeta import ModelMeta
from fprt.runtime.backends.base import Backend, log

_NP_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


def embed_companion(path: Path) -> Path | None:
    """The embed graph export writes beside a pair model: ``x.embed.onnx`` (or ``x.onnx.embed.onnx``)."""
    for cand in (path.with_name(path.stem + ".embed.onnx"), path.with_name(path.name + ".embed.onnx")):
        if cand.exists() and cand != path:
            return cand
    return None


_PROTOBUF_LIMIT = 2**31 - 1  # a serialized ModelProto cannot be larger


def read_model(path: Path) -> tuple[bytes | str, str]:
    """``(what ONNX Runtime loads, sha256 over every byte of it)`` for the ONNX file at ``path``.

    A model whose tensors live in external data files has them read from the model file's own
    folder (never the current directory) and filled into the graph, so the bytes hashed are the bytes
    loaded and the embedding cache key changes whenever any of them does. Above protobuf's 2 GiB the
    path itself is returned (ONNX Runtime then reads the same files, also beside the model).
    """
    data = _read(path, path, "the ONNX file")
    if b"location" not in data:  # no external-data entry can be in the file
        return data, sha256_bytes(data)
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from exc
    tensors = [t for t in _all_tensors(proto) if uses_external_data(t)]
    if not tensors:
        return data, sha256_bytes(data)
    digest = hashlib.sha256(data)
    files: dict[str, bytes] = {}
    for tensor in tensors:
        info = ExternalDataInfo(tensor)
        blob = files.get(info.location)
        if blob is None:
            blob = files[info.location] = _read(_external_path(path, info.location, tensor.name), path,
                                                f"external data of tensor {tensor.name!r}")
            digest.update(b"\0" + info.location.encode() + b"\0" + hashlib.sha256(blob).digest())
        offset = info.offset or 0
        end = len(blob) if info.length is None else offset + info.length
        if end > len(blob):
            raise ModelError(f"{path}: tensor {tensor.name!r} wants bytes {offset}..{end} of {info.location}, which holds {len(blob)}")
        tensor.raw_data = blob[offset:end]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
    if sum(len(b) for b in files.values()) + len(data) >= _PROTOBUF_LIMIT:
        return str(path), digest.hexdigest()
    return proto.SerializeToString(), digest.hexdigest()


def _all_tensors(proto):
    """Every TensorProto of the model: initializers and tensor attributes, subgraphs included."""

    def of_graph(graph):
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from of_graph(attr.g)
                for sub in attr.graphs:
                    yield from of_graph(sub)

    return list(of_graph(proto.graph))


def _external_path(model: Path, location: str, tensor: str) -> Path:
    """``location`` inside the model file's folder; an absolute path or one climbing out with ``..`` is refused."""
    rel = Path(location)
    if rel.is_absolute() or ".." in rel.parts:
        raise ModelError(
            f"{model}: tensor {tensor!r} points at external data {location!r} outside the model's folder; "
            "external data files must sit beside the .onnx file (relative paths without '..')"
        )
    return model.parent / rel


def _read(path: Path, model: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{model}: cannot read {what} at {path}: {exc.strerror or exc}") from exc


class _Session:
    """One ORT InferenceSession plus its I/O description."""

    def __init__(self, path: Path, *, device: str, threads: int, ort_tensorrt: bool, spinning: bool) -> None:
        import onnxruntime as ort

        data, self.sha256 = read_model(path)
        self.path = path
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        if not spinning:
            # the pipeline's decode threads share the cores: do not let idle ORT workers spin on them
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        providers: list[Any] = ["CPUExecutionProvider"]
        self.bridge: StreamBridge | None = None  # the session's own CUDA stream (device="cuda")
        if device == "cuda":
            available = ort.get_available_providers()
            if "CUDAExecutionProvider" not in available:
                raise MissingDependencyError(
                    f"--device cuda: onnxruntime {ort.__version__} offers only {available}, no CUDAExecutionProvider. "
                    "Install onnxruntime-gpu (pip install 'fprt[gpu]') on a machine with an NVIDIA GPU, or use --device cpu."
                )
            import torch

            if not torch.cuda.is_available():
                raise MissingDependencyError("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
            device_id = torch.cuda.current_device()
            self.bridge = StreamBridge(TorchCuda(), f"cuda:{device_id}")
            stream = str(self.bridge.handle)
            cuda_opts = {"device_id": device_id, "user_compute_stream": stream}
            providers = [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
            if ort_tensorrt:
                if "TensorrtExecutionProvider" not in available:
                    raise MissingDependencyError(
                        f"ort_tensorrt: onnxruntime offers {available}, no TensorrtExecutionProvider (needs onnxruntime-gpu built with TensorRT)"
                    )
                providers.insert(0, ("TensorrtExecutionProvider", {"device_id": cuda_opts["device_id"], "user_compute_stream": stream}))
        try:
            self.session = ort.InferenceSession(data, sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for corrupt/invalid graphs
            raise ModelError(f"{path}: ONNX Runtime cannot load this file ({type(exc).__name__}: {exc})") from exc
        self.providers = self.session.get_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise MissingDependencyError(
                f"{path}: --device cuda was asked for but ONNX Runtime runs this model on {self.providers} only"
            )
        log.info("onnxruntime %s: %s runs on %s", ort.__version__, path.name, self.providers)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = {o.name: o for o in self.session.get_outputs()}
        self.props = dict(self.session.get_modelmeta().custom_metadata_map)

    def input_dtype(self, name: str):
        kind = self.inputs[name].type
        if kind not in _NP_TYPES:
            raise ModelError(f"{self.path}: input {name!r} has type {kind}; fprt feeds float32, float16 or uint8")
        return _NP_TYPES[kind]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(self.outputs)
        values = self.session.run(names, feeds)
        return dict(zip(names, values))

    def run_cuda(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """IOBinding on torch CUDA tensors: inputs and outputs stay on the device."""
        import torch

        binding = self.session.io_binding()
        keep = []
        n = None
        for name, value in feeds.items():
            t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            t = t.to("cuda", non_blocking=True).contiguous()
            keep.append(t)
            n = t.shape[0]
            binding.bind_input(name, "cuda", t.device.index or 0, _torch_to_np(t.dtype), tuple(t.shape), t.data_ptr())
        outs: dict[str, Any] = {}
        for name, out in self.outputs.items():
            dims = out.shape[1:]
            if all(isinstance(d, int) for d in dims):
                shape = (n, *dims)
                t = torch.empty(shape, dtype=torch.float32, device="cuda")
                binding.bind_output(name, "cuda", t.device.index or 0, np.float32, shape, t.data_ptr())
                outs[name] = t
            else:  # symbolic trailing dims: let ORT allocate on the device, copy through DLPack-free host path
                binding.bind_output(name, "cuda")
                outs[name] = None
        with self.bridge.enqueue(keep + [t for t in outs.values() if t is not None]):
            self.session.run_with_iobinding(binding)
        if any(v is None for v in outs.values()):
            values = binding.copy_outputs_to_cpu()
            for (name, v), arr in zip(list(outs.items()), values):
                if v is None:
                    outs[name] = torch.from_numpy(arr).to("cuda")
        return outs


def check_graph_fits_meta(session: _Session, meta: ModelMeta) -> None:
    """``ModelError`` naming the file when its metadata disagrees with its graph: the image inputs'
    size and channels against ``meta.preprocess``, the embedding width against ``embedding_dim`` and
    the centroids."""
    size, channels = meta.preprocess.size, meta.preprocess.channels
    for name, node in session.inputs.items():
        if not name.startswith("image"):
            continue
        dims = list(node.shape)
        want_c = 1 if node.type == "tensor(uint8)" else channels
        fixed = [d if isinstance(d, int) else None for d in dims[1:]]
        if len(dims) != 4 or any(d is not None and d != w for d, w in zip(fixed, (want_c, size, size))):
            raise ModelError(
                f"{session.path}: input {name!r} has shape {dims} but the file's metadata says preprocess "
                f"size {size}, {want_c} channel(s) (N×{want_c}×{size}×{size}); the metadata does not belong to this graph"
            )
    out = session.outputs.get("embedding")
    width = out.shape[-1] if out is not None and out.shape and isinstance(out.shape[-1], int) else None
    if width is None:
        return
    if meta.embedding_dim is not None and meta.embedding_dim != width:
        raise ModelError(f"{session.path}: the graph's embedding has {width} values, its metadata says embedding_dim {meta.embedding_dim}")
    if meta.centroids is not None and len(meta.centroids[0]) != width:
        raise ModelError(
            f"{session.path}: centroids of {len(meta.centroids[0])} values in the metadata, but the graph's embedding has {width}"
        )


def _torch_to_np(dtype):
    import torch

    return {torch.float32: np.float32, torch.float16: np.float16, torch.uint8: np.uint8}[dtype]


class OnnxBackend(Backend):
    format = "onnx"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        threads: int | None = None,
        ort_tensorrt: bool = False,
        spinning: bool = False,
        **unused: Any,
    ) -> None:
        super().__init__(model, device=device, threads=threads)
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("the onnx backend needs onnxruntime: pip install onnxruntime") from exc
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX file")
        opts = dict(device=self.device, threads=self.threads, ort_tensorrt=ort_tensorrt, spinning=spinning)
        self.main = _Session(self.path, **opts)
        try:
            self.meta = ModelMeta.from_onnx_metadata(self.main.props, source=str(self.path))
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
        self.model_sha256 = self.main.sha256
        self.embed_session = self.main
        if self.meta.kind == "pair":
            companion = embed_companion(self.path)
            if companion is None:
                raise ModelError(
                    f"{self.path}: a pair scorer needs its embed graph beside it ({self.path.stem}.embed.onnx, "
                    "written by `fprt export-onnx`) to find each image's neighbours"
                )
            self.embed_session = _Session(companion, **opts)
            self.model_sha256 = sha256_bytes((self.main.sha256 + self.embed_session.sha256).encode())
            for name in ("image_a", "image_b"):
                if name not in self.main.inputs:
                    raise ModelError(f"{self.path}: pair scorer input {name!r} missing; inputs are {list(self.main.inputs)}")
        if "image" not in self.embed_session.inputs:
            raise ModelError(
                f"{self.embed_session.path}: expected an input named 'image', found {list(self.embed_session.inputs)}"
            )
        missing = [o for o in self.image_outputs if o not in self.embed_session.outputs]
        if missing:
            raise ModelError(
                f"{self.embed_session.path}: a {self.meta.kind!r} model must have output(s) {list(self.image_outputs)}; "
                f"it has {list(self.embed_session.outputs)}"
            )
        for session in {id(self.main): self.main, id(self.embed_session): self.embed_session}.values():
            check_graph_fits_meta(session, self.meta)
        self.input_names = tuple(self.main.inputs)
        self.output_names = tuple(self.main.outputs)
        self.uint8_input = self.embed_session.input_dtype("image") == np.uint8
        self.details = {
            "providers": self.main.providers,
            "onnxruntime": __import__("onnxruntime").__version__,
            "uint8_input": self.uint8_input,
            "spinning": spinning,
        }

    def _feed(self, session: _Session, name: str, pixels: np.ndarray):
        dtype = session.input_dtype(name)
        if dtype == np.uint8:
            p = np.asarray(pixels)
            if p.ndim != 3 or p.shape[1:] != (self.meta.preprocess.size,) * 2:
                raise ValueError(f"expected N×S×S uint8 pixels, got {p.shape}")
            return np.ascontiguousarray(p[:, None])
        x = self.prepare(pixels)
        return x.astype(dtype, copy=False)

    def forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
        session = self.main if set(inputs) <= set(self.main.inputs) else self.embed_session
        return session.run_cuda(inputs) if self.device == "cuda" else session.run(inputs)

    def prepare_inputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's feeds for N×S×S uint8 pixels (normalised unless the graph takes uint8).

        Split from ``infer`` so the pipeline can do it in the decode stage, off the model's thread."""
        return {"image": self._feed(self.embed_session, "image", pixels)}

    def infer_prepared(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        out = self.embed_session.run_cuda(feeds) if self.device == "cuda" else self.embed_session.run(feeds)
        return {name: out[name] for name in self.image_outputs}

    def infer(self, pixels: np.ndarray) -> dict[str, Any]:
        return self.infer_prepared(self.prepare_inputs(pixels))

    def pair_probability(self, pixels_a: np.ndarray, pixels_b: np.ndarray):
        if self.meta.kind != "pair":
            return super().pair_probability(pixels_a, pixels_b)
        feeds = {"image_a": self._feed(self.main, "image_a", pixels_a), "image_b": self._feed(self.main, "image_b", pixels_b)}
        out = self.main.run_cuda(feeds) if self.device == "cuda" else self.main.run(feeds)
        prob = out["probability"] if "probability" in out else next(iter(out.values()))
        return prob.reshape(-1)

    def close(self) -> None:
        self.main = self.embed_session = None  # type: ignore[assignment]
