"""PyTorch → ONNX: the exportable wrapper modules and the exporter call.

A trained model is wrapped so that the exported graph has fprt's fixed interface:

- inputs ``image`` (or ``image_a``/``image_b`` for a pair scorer), N×C×S×S float32 already normalised
  by the model's ``Preprocess`` — or, with ``uint8_input``, raw N×1×S×S uint8 pixels that the graph
  casts and normalises itself (``Preprocess.module()``: the same ops in the same order);
- outputs ``embedding`` / ``logits`` + ``embedding`` / ``probability`` (N);
- a dynamic batch axis named ``batch``.

Exporter: ``torch.onnx.export(dynamo=True)`` (the torch.export-based exporter, torch's default since
2.9) is tried first: on every fprt model kind it gives clean graphs (no ``Identity`` chains, static
feature sizes, ``embedding`` typed ``batch×D`` rather than a symbolic width) with a dynamic batch, and
it exports ops the TorchScript exporter refuses (``AdaptiveAvgPool2d`` to a size that does not divide
the input). If it fails on some model, the TorchScript exporter (``dynamo=False``) is tried, with a
warning, and the file records which one was used. Either way the parity check that follows decides.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from fprt.export.metadata import BATCH_DIM, io_names


def _torch():
    import torch

    return torch


def wrap(model, meta, *, part: str = "main", uint8_input: bool = False):
    """The ``nn.Module`` to export for ``model`` (eval mode, fixed I/O as in the module docstring)."""
    torch = _torch()
    kind = meta.kind
    pre = meta.preprocess.module() if uint8_input else None

    def prep(x):
        return pre(x) if pre is not None else x

    if kind == "pair" and part == "main":

        class PairGraph(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model
                self.pre = pre

            def forward(self, image_a, image_b):
                p = self.model(prep(image_a), prep(image_b))
                if isinstance(p, (tuple, list)):
                    p = p[0]
                return p.reshape(p.shape[0])

        return PairGraph().eval()

    class ImageGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.pre = pre

        def forward(self, image):
            x = prep(image)
            if kind == "pair":  # the pair model's embed graph
                return self.model.embed(x)
            out = self.model(x)
            if kind == "classifier":
                logits, embedding = out
                return logits, embedding
            if isinstance(out, (tuple, list)):
                raise TypeError(f"an embedding model must return one N×D tensor, got a {type(out).__name__}")
            return out

    return ImageGraph().eval()


def example_inputs(meta, *, part: str = "main", uint8_input: bool = False, batch: int = 2, seed: int = 0):
    """Example inputs for tracing: ``batch`` images (2 by default: torch.export specialises a batch of 1)."""
    torch = _torch()
    c, s = (1 if uint8_input else meta.preprocess.channels), meta.preprocess.size
    names = io_names(meta.kind, part=part)[0]
    g = torch.Generator().manual_seed(seed)
    if uint8_input:
        return tuple(torch.randint(0, 256, (batch, c, s, s), generator=g, dtype=torch.uint8) for _ in names)
    pixels = torch.randint(0, 256, (batch, s, s), generator=g, dtype=torch.uint8).numpy()
    x = torch.from_numpy(meta.preprocess.normalize_uint8(pixels))
    return tuple(x.clone() for _ in names)


def torch_outputs(module, meta, pixels: np.ndarray, *, part: str = "main") -> dict[str, np.ndarray]:
    """The PyTorch reference on N×S×S uint8 pixels: NumPy ``Preprocess`` → float model, outputs by name."""
    torch = _torch()
    from fprt.export.ort import pair_partner

    names_in, names_out = io_names(meta.kind, part=part)
    x = torch.from_numpy(meta.preprocess.normalize_uint8(pixels))
    args = (x,) if len(names_in) == 1 else (x, torch.from_numpy(meta.preprocess.normalize_uint8(pair_partner(pixels))))
    with torch.inference_mode():
        out = module(*args)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return {name: t.detach().float().cpu().numpy() for name, t in zip(names_out, out)}


def _export_dynamo(module, args, names_in, names_out, opset):
    torch = _torch()
    batch = torch.export.Dim(BATCH_DIM, min=1, max=1 << 16)
    dynamic_shapes = {name: {0: batch} for name in names_in}
    program = torch.onnx.export(
        module,
        args,
        dynamo=True,
        input_names=list(names_in),
        output_names=list(names_out),
        opset_version=opset,
        dynamic_shapes=dynamic_shapes,
        external_data=False,
        optimize=True,
        verbose=False,
    )
    return program.model_proto


def _export_torchscript(module, args, names_in, names_out, opset):
    torch = _torch()
    import onnx

    buf = io.BytesIO()
    torch.onnx.export(
        module,
        args,
        buf,
        dynamo=False,
        input_names=list(names_in),
        output_names=list(names_out),
        opset_version=opset or 17,
        dynamic_axes={name: {0: BATCH_DIM} for name in (*names_in, *names_out)},
        do_constant_folding=True,
    )
    return onnx.load_from_string(buf.getvalue())


EXPORTERS = ("auto", "dynamo", "torchscript")


def _pin_output_shapes(proto, module, args) -> None:
    """Declare every output as ``batch`` × its static sizes (the TorchScript exporter leaves symbolic
    widths such as ``Divembedding_dim_1``), using one PyTorch forward on the example inputs."""
    torch = _torch()
    with torch.inference_mode():
        out = module(*args)
    out = out if isinstance(out, (tuple, list)) else (out,)
    for value, tensor in zip(proto.graph.output, out):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != tensor.dim():
            continue
        for i, d in enumerate(dims):
            if i == 0:
                d.dim_param = BATCH_DIM
            elif d.dim_param or d.dim_value != tensor.shape[i]:
                d.dim_value = int(tensor.shape[i])


def to_onnx(module, meta, *, part: str = "main", uint8_input: bool = False, opset: int | None = None, exporter: str = "auto"):
    """Export ``module`` (from ``wrap``) → ``(onnx.ModelProto, exporter used, notes)``; raises on failure."""
    from fprt.errors import ModelError

    if exporter not in EXPORTERS:
        raise ModelError(f"unknown exporter {exporter!r}; expected one of {EXPORTERS}")
    names_in, names_out = io_names(meta.kind, part=part)
    args = example_inputs(meta, part=part, uint8_input=uint8_input)
    order = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    notes: list[str] = []
    errors: list[str] = []
    for name in order:
        fn = _export_dynamo if name == "dynamo" else _export_torchscript
        log = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(log):
                warnings.simplefilter("ignore")
                proto = fn(module, args, names_in, names_out, opset)
        except Exception as exc:  # exporter failures come in many types; keep the first line of each
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            errors.append(f"{name}: {type(exc).__name__}: {first}")
            continue
        _pin_output_shapes(proto, module, args)
        if errors:
            notes.append(f"exported with the {name} exporter after: {'; '.join(errors)}")
            warnings.warn(f"fprt export: {notes[-1]}", stacklevel=2)
        return proto, name, notes
    raise ModelError(f"{meta.model}: ONNX export failed ({' | '.join(errors)})")
