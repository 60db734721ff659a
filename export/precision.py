"""Reduced-precision ONNX: FP16 conversion and INT8 static QDQ quantisation with an accuracy gate.

FP16 (``to_fp16``): ONNX Runtime's own ``onnxruntime.transformers.float16.convert_float_to_float16``
(a maintained fork of onnxconverter-common's converter, shipped inside the onnxruntime wheel fprt
already depends on — no extra package). Inputs and outputs keep their types (``keep_io_types=True``: uint8
input for the default export, float32 for ``--float-input``; float32 outputs): the graph casts at its edges, so
the runtime feeds the same arrays at every precision, and TensorRT 11 (strongly typed: the precision is whatever
the graph says) builds an FP16 engine from it.

INT8 (``quantize_int8``): ``onnxruntime.quantization.quantize_static`` in QDQ format after ORT's
``quant_pre_process`` (ONNX shape inference + graph optimisation), calibrated with MinMax on real
images passed through the model's own ``Preprocess`` (the same feeds the runtime makes). Settings for
x86 CPUs without VNNI (this machine: AVX2, no VNNI) as ONNX Runtime's documentation advises: uint8
activations, int8 weights, ``reduce_range=True`` (7-bit weights, so the 16-bit accumulation of
AVX2's ``vpmaddubsw`` cannot saturate), per-channel weights (accuracy for ResNet-style convolutions).
The result targets ONNX Runtime's CPU EP; TensorRT needs symmetric int8 activations and is not fed
these files (``build_engine`` refuses them).

The INT8 gate (``int8_gate``) compares the INT8 graph with PyTorch fp32 on the calibration images and
refuses the export when (bounds in ``Int8Gate``):

- any row's cosine to fp32 (embeddings, logits) is below ``min_cosine`` (0.98), or
- the downstream decision degrades: with labels (a calibration folder in an fprt dataset layout),
  accuracy — nearest centroid for subsets embedding models, argmax for classifiers, the sklearn head
  for features models — drops by more than ``max_drop`` (0.02 absolute) against fp32; without labels,
  the decisions agree with fp32's on fewer than ``min_agreement`` (0.95) of the images (nearest
  centroid / argmax / head / pair threshold; for embedding models without centroids and a pair model's
  embed graph: each image's fp32 nearest neighbour among the others is among its 5 nearest in INT8).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fprt.errors import ParityError


# ---------------------------------------------------------------- FP16
def to_fp16(proto):
    """An FP16 copy of an fp32 ``ModelProto`` (float32 / uint8 graph inputs and outputs kept)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    out = convert_float_to_float16(copy, keep_io_types=True)
    toposort(out.graph)  # the converter appends its input casts at the end; onnx.checker wants order
    return out


def toposort(graph) -> None:
    """Reorder ``graph.node`` (in place) so that every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({n for node in rest for n in node.input if n not in available})
            raise ValueError(f"graph has a cycle or undefined inputs: {missing[:5]}")
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def graph_precision(proto) -> str:
    """``int8`` when the graph holds QuantizeLinear nodes, ``fp16`` when it holds float16 initializers, else ``fp32``."""
    import onnx

    ops = {n.op_type for n in proto.graph.node}
    if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer):
        return "fp16"
    return "fp32"


# ---------------------------------------------------------------- default CPU precision per model
# Measured on the 2-core AMD EPYC VM (AVX2, no VNNI), batch 64, 2 threads, ONNX Runtime 1.32
# (benchmarks/bench_models.py, backends interleaved round-robin, machine under load ≈15 from other work):
# INT8 QDQ / fp32 = 0.90× for siamese_cnn at 256×256 (0.7–1.2× over three runs: no gain — its small
# convolutions leave the quantize/dequantize overhead uncovered), 1.84× for ResNet-18 at 224×224.
# INT8 pays for the torchvision backbones, not for the Siamese CNN, whose fp32 graph is also exact.
INT8_BACKBONES = ("resnet", "densenet", "mobilenet", "efficientnet")


def recommended_cpu_precision(meta) -> str:
    """``int8`` for models on a torchvision backbone (ResNet, DenseNet, MobileNet, EfficientNet), else ``fp32``."""
    names = [meta.model, str((meta.model_kwargs or {}).get("backbone", ""))]
    if meta.model == "pair_xattn" and "backbone" not in (meta.model_kwargs or {}):
        names.append("resnet50")  # pair_xattn's default backbone
    if (meta.model_kwargs or {}).get("backbone") == "cnn":
        return "fp32"
    return "int8" if any(b in n for n in names for b in INT8_BACKBONES) else "fp32"


# ---------------------------------------------------------------- INT8
@dataclass(frozen=True)
class Int8Options:
    per_channel: bool = True
    reduce_range: bool = True
    """7-bit weights: for x86 CPUs without VNNI (``--no-reduce-range`` on VNNI machines)."""
    calibrate_method: str = "minmax"
    calib_batch: int = 8


@dataclass(frozen=True)
class Int8Gate:
    min_cosine: float = 0.98
    max_drop: float = 0.02
    min_agreement: float = 0.95


def _calibration_reader(input_names, pixels: np.ndarray, preprocess, *, uint8: bool, batch: int):
    from onnxruntime.quantization import CalibrationDataReader

    from fprt.export.ort import feeds

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._starts = list(range(0, len(pixels), batch))
            self._i = 0

        def get_next(self):
            if self._i >= len(self._starts):
                return None
            s = self._starts[self._i]
            self._i += 1
            return feeds(input_names, pixels[s : s + batch], preprocess, uint8=uint8)

        def rewind(self):
            self._i = 0

        def __len__(self):
            return len(self._starts)

    return Reader()


def quantize_int8(proto, calib_pixels: np.ndarray, preprocess, options: Int8Options = Int8Options()):
    """Static QDQ INT8 copy of an fp32 ``ModelProto``, calibrated on ``calib_pixels`` (N×S×S uint8)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fprt.export.metadata import graph_io

    io = graph_io(proto)
    names = list(io["inputs"])
    uint8 = next(iter(io["inputs"].values()))["dtype"] == "uint8"
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory(prefix="fprt-int8-") as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(proto.SerializeToString())
        # ONNX's own shape inference suffices (only the batch axis is dynamic); ORT's symbolic shape
        # inference trips over the dynamo exporter's shape arithmetic (Shape/Expand of F.normalize)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            _calibration_reader(names, calib_pixels, preprocess, uint8=uint8, batch=options.calib_batch),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=options.per_channel,
            reduce_range=options.reduce_range,
            calibrate_method=methods[options.calibrate_method],
        )
        out = onnx.load(str(dst))
    # quantize_static keeps metadata_props of its input only sometimes; the caller sets them again
    return out


# ---------------------------------------------------------------- the gate
def _scores(emb: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of each row to each centroid, larger = closer, under the model's ``metric``."""
    if metric == "l2":
        d = ((emb[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
        return -d
    if metric == "cosine":
        e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        return e @ c.T
    return emb @ centroids.T


NN_RULE = "nearest neighbour among the calibration images"
NN_RECALL_K = 5


def _neighbour_scores(emb: np.ndarray, metric: str) -> np.ndarray:
    s = _scores(emb, emb, metric)
    np.fill_diagonal(s, -np.inf)
    return s


def _nearest_neighbour(emb: np.ndarray, metric: str) -> np.ndarray:
    return _neighbour_scores(emb, metric).argmax(1)


def neighbour_recall(ref: np.ndarray, got: np.ndarray, metric: str, k: int = NN_RECALL_K) -> float:
    """Share of images whose fp32 nearest neighbour is among their ``k`` nearest under ``got``
    (recall@k: exact top-1 agreement is too brittle where images have near-duplicate neighbours)."""
    nn32 = _nearest_neighbour(ref.astype(np.float64), metric)
    s8 = _neighbour_scores(got.astype(np.float64), metric)
    k = min(k, len(ref) - 1)
    top = np.argpartition(-s8, k - 1, axis=1)[:, :k]
    return float((top == nn32[:, None]).any(1).mean())


def decisions(outputs: dict[str, np.ndarray], meta) -> tuple[str, np.ndarray, bool]:
    """``(rule, per-image decisions, decisions are class indices into meta.class_names)``."""
    if "logits" in outputs:
        return "classifier argmax", outputs["logits"].argmax(1), True
    if "probability" in outputs:
        thr = 0.5 if meta.threshold is None else float(meta.threshold)
        return f"pair probability > {thr:g}", (outputs["probability"] > thr).astype(int), False
    emb = outputs["embedding"].astype(np.float64)
    if meta.kind != "embedding":  # a pair model's embed graph: no head, no centroids
        return NN_RULE, _nearest_neighbour(emb, meta.metric), False
    if meta.head:
        try:
            from fprt.trainer.heads import apply_head
        except ImportError:
            apply_head = None
        if apply_head is not None:
            out = apply_head(meta.head, emb.astype(np.float32))
            pred = out[0] if isinstance(out, tuple) else out
            return "sklearn head", np.asarray(pred).ravel(), False
    if meta.centroids:
        return "nearest centroid", _scores(emb, np.asarray(meta.centroids, np.float64), meta.metric).argmax(1), True
    return NN_RULE, _nearest_neighbour(emb, meta.metric), False


@dataclass
class GateResult:
    passed: bool
    images: str
    n_images: int
    rule: str
    min_cosine: float | None
    agreement: float
    accuracy_fp32: float | None
    accuracy_int8: float | None
    bounds: dict
    problems: list[str]

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"  int8 gate on {self.n_images} images ({self.rule}):"]
        if self.min_cosine is not None:
            out.append(f"    min row cosine to fp32 {self.min_cosine:.5f} (bound ≥ {self.bounds['min_cosine']})")
        out.append(f"    decisions agreeing with fp32 {self.agreement:.4f}")
        if self.accuracy_fp32 is not None:
            out.append(
                f"    accuracy fp32 {self.accuracy_fp32:.4f} → int8 {self.accuracy_int8:.4f} "
                f"(drop {self.accuracy_fp32 - self.accuracy_int8:+.4f}, bound ≤ {self.bounds['max_drop']})"
            )
        out.append(f"    {'passed' if self.passed else 'REFUSED: ' + '; '.join(self.problems)}")
        return out


def int8_gate(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], meta, imageset, gate: Int8Gate = Int8Gate()) -> GateResult:
    """Judge INT8 outputs ``got`` against fp32 outputs ``ref`` on the calibration ``imageset``."""
    from fprt.export.parity import row_cosine

    problems: list[str] = []
    cos = [float(row_cosine(ref[k], got[k]).min()) for k in ref if ref[k].ndim == 2]
    min_cos = min(cos) if cos else None
    if min_cos is not None and min_cos < gate.min_cosine:
        problems.append(f"row cosine to fp32 {min_cos:.4f} < {gate.min_cosine}")
    rule, d32, is_class = decisions(ref, meta)
    _, d8, _ = decisions(got, meta)
    if rule == NN_RULE:
        rule = f"{NN_RULE}: fp32 top-1 within INT8 top-{NN_RECALL_K}"
        agreement = neighbour_recall(ref["embedding"], got["embedding"], meta.metric)
    else:
        agreement = float((d32 == d8).mean())
    acc32 = acc8 = None
    labels = imageset.labels
    if labels is not None and is_class:
        index = {c: i for i, c in enumerate(meta.class_names)}
        known = np.array([lab in index for lab in labels])
        if known.any():
            y = np.array([index.get(lab, -1) for lab in labels])[known]
            acc32 = float((d32[known] == y).mean())
            acc8 = float((d8[known] == y).mean())
            if acc32 - acc8 > gate.max_drop:
                problems.append(f"accuracy drop {acc32 - acc8:.4f} > {gate.max_drop} ({acc32:.4f} → {acc8:.4f})")
    if acc32 is None and agreement < gate.min_agreement:
        problems.append(f"decision agreement with fp32 {agreement:.4f} < {gate.min_agreement}")
    return GateResult(
        passed=not problems,
        images=imageset.source,
        n_images=len(imageset),
        rule=rule,
        min_cosine=min_cos,
        agreement=agreement,
        accuracy_fp32=acc32,
        accuracy_int8=acc8,
        bounds=asdict(gate),
        problems=problems,
    )


def require(result: GateResult, source: str) -> None:
    if not result.passed:
        raise ParityError(f"{source}: INT8 export refused by the accuracy gate: {'; '.join(result.problems)}")
