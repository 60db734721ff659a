"""What an fprt ONNX file carries besides its graph, and how it is read back.

Every file ``fprt export-onnx`` writes holds, in ``metadata_props``:

- ``fprt.meta``    — the ``ModelMeta`` JSON (preprocessing, task, classes, centroids, threshold, metric,
  embedding size, source checkpoint sha256, fprt version). Its ``extra["export"]`` records how the
  file was made: precision, input dtype, opset, exporter, parity figures and, for pair models, the
  companion embed graph (file name and sha256).
- ``fprt.version`` — the fprt version that wrote it.

``load_onnx_meta(path)`` is what the runtime calls: it checks the file is a readable, valid ONNX
model exported by fprt whose inputs and outputs fit its kind, and returns its ``ModelMeta``; anything
else is a ``ModelError`` naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fprt.errors import ModelError
from fprt.modelmeta import ModelMeta

# ModelMeta.kind → (input names, output names) of the exported graph
IO_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "embedding": (("image",), ("embedding",)),
    "classifier": (("image",), ("logits", "embedding")),
    "pair": (("image_a", "image_b"), ("probability",)),
}
# the companion graph of a pair model: one image in, its embedding out
EMBED_IO_NAMES: tuple[tuple[str, ...], tuple[str, ...]] = (("image",), ("embedding",))
BATCH_DIM = "batch"
EXPORT_KEY = "export"  # ModelMeta.extra[EXPORT_KEY]: how the file was made


def io_names(kind: str, *, part: str = "main") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input names, output names) for a model ``kind``; ``part="embed"`` for a pair model's embed graph."""
    if part == "embed":
        return EMBED_IO_NAMES
    if kind not in IO_NAMES:
        raise ModelError(f"unknown model kind {kind!r}; expected one of {sorted(IO_NAMES)}")
    return IO_NAMES[kind]


def embed_path_for(out: str | Path) -> Path:
    """``model.onnx`` → ``model.embed.onnx`` (the pair model's embed graph, beside the main file)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.embed.onnx")


def parity_path_for(out: str | Path) -> Path:
    """``model.onnx`` → ``model.onnx.parity.json`` (the parity report stored beside the model)."""
    out = Path(out)
    return out.with_name(f"{out.name}.parity.json")


def set_metadata(proto, meta: ModelMeta) -> None:
    """Replace ``proto.metadata_props`` with ``meta.to_onnx_metadata()`` (in place)."""
    del proto.metadata_props[:]
    for key, value in meta.to_onnx_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def metadata_props(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def export_info(meta: ModelMeta) -> dict[str, Any]:
    """``meta.extra["export"]`` (empty dict when the file predates it)."""
    return dict(meta.extra.get(EXPORT_KEY) or {})


def graph_io(proto) -> dict[str, Any]:
    """Names, element types and shapes (``"batch"`` or ints) of a graph's inputs and outputs."""
    import onnx

    def describe(values):
        out = {}
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in t.shape.dim] if t.HasField("shape") else None
            out[v.name] = {"dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else None, "shape": dims}
        return out

    initializers = {i.name for i in proto.graph.initializer}
    return {
        "inputs": describe([v for v in proto.graph.input if v.name not in initializers]),
        "outputs": describe(proto.graph.output),
    }


def _load_proto(path: Path, *, check: bool):
    import onnx

    if not path.exists():
        raise ModelError(f"{path}: no such ONNX file")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, expected an .onnx file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, truncated file, not protobuf at all
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc}); re-export it with `fprt export-onnx`") from exc
    if not proto.graph.node and not proto.graph.output:
        # a protobuf parser accepts many byte strings as an empty ModelProto
        raise ModelError(f"{path}: not an ONNX model (no graph found in the file); re-export it with `fprt export-onnx`")
    if check:
        try:
            onnx.checker.check_model(proto)
        except Exception as exc:
            raise ModelError(f"{path}: invalid ONNX model ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})") from exc
    return proto


def check_io(proto, meta: ModelMeta, *, source: str, part: str = "main") -> None:
    """Raise ``ModelError`` when the graph's inputs/outputs do not fit ``meta.kind``."""
    want_in, want_out = io_names(meta.kind, part=part)
    io = graph_io(proto)
    if tuple(io["inputs"]) != want_in or tuple(io["outputs"]) != want_out:
        raise ModelError(
            f"{source}: graph inputs {list(io['inputs'])} / outputs {list(io['outputs'])} do not fit a "
            f"{meta.kind!r} model (expected inputs {list(want_in)} and outputs {list(want_out)})"
        )
    c, s = meta.preprocess.channels, meta.preprocess.size
    for name, info in io["inputs"].items():
        shape = info["shape"]
        expect_c = 1 if info["dtype"] == "uint8" else c
        if shape is None or len(shape) != 4 or list(shape[1:]) != [expect_c, s, s]:
            raise ModelError(
                f"{source}: input {name!r} has shape {shape}; its metadata's Preprocess expects N×{expect_c}×{s}×{s}"
            )


def read_onnx(path: str | Path, *, check: bool = True):
    """``(proto, meta)`` of an ONNX file written by ``fprt export-onnx``.

    Checks, in order: the file exists and parses as ONNX, ``onnx.checker`` accepts it (``check=True``),
    it carries fprt metadata, and its inputs/outputs fit the metadata's model kind. Any failure is a
    ``ModelError`` naming the file and the problem.
    """
    path = Path(path)
    proto = _load_proto(path, check=check)
    try:
        meta = ModelMeta.from_onnx_metadata(metadata_props(proto), source=str(path))
    except ValueError as exc:
        raise ModelError(str(exc)) from exc
    part = "embed" if export_info(meta).get("part") == "embed" else "main"
    check_io(proto, meta, source=str(path), part=part)
    return proto, meta


def load_onnx_meta(path: str | Path, *, check: bool = True) -> ModelMeta:
    """The ``ModelMeta`` of an fprt ONNX file (the runtime's entry point); see ``read_onnx`` for the checks."""
    return read_onnx(path, check=check)[1]


def load_embed_meta(path: str | Path) -> tuple[Path, ModelMeta]:
    """For a pair model's main file: the path and ``ModelMeta`` of its embed graph, checked against the
    sha256 recorded in the main file (a stale or swapped embed file is a ``ModelError``)."""
    from fprt.io import sha256_file

    path = Path(path)
    meta = load_onnx_meta(path)
    info = export_info(meta).get("embed_onnx")
    if meta.kind != "pair" or not info:
        raise ModelError(f"{path}: is a {meta.kind!r} model without an embed graph (only pair models have one)")
    if (not isinstance(info, dict) or not isinstance(info.get("file"), str) or not isinstance(info.get("sha256"), str)
            or Path(info["file"]).name != info["file"] or info["file"] in ("", ".", "..")):
        raise ModelError(
            f"{path}: corrupt metadata: extra.export.embed_onnx must be {{'file': <a file name beside the model>, "
            f"'sha256': <hex>}}, got {info!r}"
        )
    embed = path.with_name(info["file"])
    if not embed.exists():
        raise ModelError(f"{path}: its embed graph {embed} is missing; re-export the pair model")
    digest = sha256_file(embed)
    if digest != info["sha256"]:
        raise ModelError(
            f"{embed}: sha256 {digest[:12]}… does not match the {info['sha256'][:12]}… recorded in {path}; "
            "the two files come from different exports"
        )
    return embed, load_onnx_meta(embed)
