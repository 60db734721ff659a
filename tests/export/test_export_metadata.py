"""Reading fprt ONNX files back: metadata round trip, and clear errors for corrupt or foreign files."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fprt.errors import ModelError
from fprt.export import export_onnx, load_onnx_meta
from fprt.export.metadata import embed_path_for, load_embed_meta, metadata_props, set_metadata
from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess

from export_testlib import make_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One exported pair model (main + embed graph) shared by the read-back tests."""
    model, meta = make_model("pair")
    meta.centroids = None
    meta.checkpoint_sha256 = "ab" * 32
    out = tmp_path_factory.mktemp("meta") / "pair.onnx"
    export_onnx(model, out, meta=meta, batch_sizes=(1, 3), exporter="torchscript", log=lambda s: None)
    return out, meta


def _foreign_model(path, with_meta: ModelMeta | None = None, input_name="image", shape=(None, 1, 64, 64)):
    """A valid ONNX file not written by fprt (an Identity graph), optionally given fprt metadata."""
    dims = ["batch" if d is None else d for d in shape]
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, dims)
    graph = helper.make_graph([helper.make_node("Identity", [input_name], ["embedding"])], "foreign", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if with_meta is not None:
        set_metadata(proto, with_meta)
    onnx.save(proto, str(path))
    return path


def test_metadata_round_trip(exported):
    out, meta = exported
    back = load_onnx_meta(out)
    expected = meta.to_dict()
    got = back.to_dict()
    extra = got.pop("extra")
    expected.pop("extra")
    assert got == expected  # every ModelMeta field survives, centroids and hash included
    assert back.checkpoint_sha256 == "ab" * 32
    assert extra["export"]["part"] == "main" and extra["export"]["embed_onnx"]["file"] == "pair.embed.onnx"
    props = metadata_props(onnx.load(str(out)))
    assert set(props) == {"fprt.meta", "fprt.version"}
    assert ModelMeta.from_json(props["fprt.meta"]).preprocess == Preprocess(size=64)


def test_pair_embed_graph_is_tied_by_hash(exported, tmp_path):
    out, _ = exported
    path, embed_meta = load_embed_meta(out)
    assert path == embed_path_for(out) and embed_meta.extra["export"]["part"] == "embed"
    # a swapped embed file (another export's) is detected by its sha256
    copy = tmp_path / out.name
    shutil.copy(out, copy)
    other = embed_path_for(copy)
    proto = onnx.load(str(path))
    proto.doc_string = "changed"
    onnx.save(proto, str(other))
    with pytest.raises(ModelError, match=r"pair\.embed\.onnx: sha256 .* does not match"):
        load_embed_meta(copy)
    other.unlink()
    with pytest.raises(ModelError, match="embed graph .* is missing"):
        load_embed_meta(copy)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ModelError, match=r"nope\.onnx: no such ONNX file"):
        load_onnx_meta(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match="is a folder"):
        load_onnx_meta(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not an onnx model at all \x00\xff" * 10, bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))],
    ids=["empty", "text", "random-bytes"],
)
def test_corrupt_file_is_a_model_error(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"bad\.onnx: not (a readable ONNX file|an ONNX model)"):
        load_onnx_meta(path)


def test_truncated_export_is_a_model_error(exported, tmp_path):
    out, _ = exported
    data = out.read_bytes()
    path = tmp_path / "torn.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"torn\.onnx: not (a readable ONNX file|an ONNX model)|torn\.onnx: invalid ONNX"):
        load_onnx_meta(path)


def test_foreign_onnx_without_fprt_metadata(tmp_path):
    path = _foreign_model(tmp_path / "foreign.onnx")
    with pytest.raises(ModelError, match=r"foreign\.onnx: no 'fprt\.meta' metadata; this ONNX file was not exported by `fprt export-onnx`"):
        load_onnx_meta(path)


def test_metadata_that_does_not_fit_the_graph(tmp_path):
    _, meta = make_model("classifier")  # expects outputs logits + embedding and 3×64×64 inputs
    path = _foreign_model(tmp_path / "mismatch.onnx", with_meta=meta, shape=(None, 3, 64, 64))
    with pytest.raises(ModelError, match=r"mismatch\.onnx: graph inputs \['image'\] / outputs \['embedding'\] do not fit a 'classifier'"):
        load_onnx_meta(path)
    _, emb_meta = make_model("embedding")
    path = _foreign_model(tmp_path / "shape.onnx", with_meta=emb_meta, shape=(None, 1, 32, 32))
    with pytest.raises(ModelError, match=r"shape\.onnx: input 'image' has shape \['batch', 1, 32, 32\]; .* expects N×1×64×64"):
        load_onnx_meta(path)


def test_corrupt_metadata_json(tmp_path):
    path = _foreign_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "fprt.meta", '{"model": "x", "kind": "nonsense"'
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match=r"m\.onnx: corrupt 'fprt\.meta' metadata"):
        load_onnx_meta(path)


def test_invalid_graph_fails_the_checker(tmp_path):
    _, meta = make_model("embedding")
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 64, 64])
    y = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 8])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["image"], ["embedding"])], "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    set_metadata(proto, meta)
    path = tmp_path / "invalid.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match=r"invalid\.onnx: invalid ONNX model"):
        load_onnx_meta(path)
