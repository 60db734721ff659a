"""ONNX Runtime sessions and feeds, shared by the parity check, INT8 calibration and benchmarks."""

from __future__ import annotations

import numpy as np

from fprt.preprocess import Preprocess


def make_session(model, *, threads: int | None = None, optimize: bool = True):
    """A CPU ``InferenceSession`` for a ``ModelProto``, serialized bytes or a path.

    ``threads`` sets intra-op threads (``None``: ONNX Runtime's default, one per physical core).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif not isinstance(model, (bytes, bytearray)):
        model = str(model)
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def input_is_uint8(session) -> bool:
    return session.get_inputs()[0].type == "tensor(uint8)"


def model_inputs(pixels: np.ndarray, preprocess: Preprocess, *, uint8: bool) -> np.ndarray:
    """N×S×S uint8 pixels → what one graph input takes: N×1×S×S uint8, or N×C×S×S float32 normalised."""
    if uint8:
        return np.ascontiguousarray(pixels[:, None])
    return preprocess.normalize_uint8(pixels)


def pair_partner(pixels: np.ndarray) -> np.ndarray:
    """The second image of each parity pair: the batch rolled by one (every image meets another)."""
    return np.roll(pixels, 1, axis=0)


def feeds(input_names, pixels: np.ndarray, preprocess: Preprocess, *, uint8: bool) -> dict[str, np.ndarray]:
    """The feed dict for a graph with inputs ``input_names`` (``image`` or ``image_a``/``image_b``)."""
    names = list(input_names)
    if len(names) == 1:
        return {names[0]: model_inputs(pixels, preprocess, uint8=uint8)}
    a, b = pixels, pair_partner(pixels)
    return {names[0]: model_inputs(a, preprocess, uint8=uint8), names[1]: model_inputs(b, preprocess, uint8=uint8)}


def run(session, pixels: np.ndarray, preprocess: Preprocess, *, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Run ``session`` on N×S×S uint8 pixels (in batches of ``batch_size``) → {output name: array}."""
    names = [i.name for i in session.get_inputs()]
    outs = [o.name for o in session.get_outputs()]
    uint8 = input_is_uint8(session)
    n = pixels.shape[0]
    step = batch_size or n
    parts: dict[str, list[np.ndarray]] = {o: [] for o in outs}
    for start in range(0, n, step):
        chunk = pixels[start : start + step]
        if len(names) == 2:
            # pair partners are chosen over the whole set, not per batch
            a = chunk
            b = pair_partner(pixels)[start : start + step]
            feed = {names[0]: model_inputs(a, preprocess, uint8=uint8), names[1]: model_inputs(b, preprocess, uint8=uint8)}
        else:
            feed = {names[0]: model_inputs(chunk, preprocess, uint8=uint8)}
        for name, value in zip(outs, session.run(outs, feed)):
            parts[name].append(value)
    return {k: np.concatenate(v) for k, v in parts.items()}
