"""Fault catalogue — model files whose fprt metadata was crafted or damaged.

On the main of 2026-12-04 each of these loaded and then failed later with a traceback
(``AttributeError`` on a preprocess that is not an object, shape errors in ONNX Runtime for a size
unlike the graph's input, ``IndexError``/``ValueError`` deep in a method for missing classes or
centroids of the wrong size) or wrote a broken run.csv (class names with a comma). Now loading the
model refuses it with one error naming the model file and the field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from faults_testkit import assert_one_error_line, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_testkit import make_onnx, make_subsets_data  # noqa: E402

from fprt.errors import ModelError  # noqa: E402
from fprt.modelmeta import ONNX_METADATA_KEY  # noqa: E402


def craft(src: Path, dst: Path, change) -> Path:
    """A copy of the ONNX file ``src`` whose fprt metadata JSON went through ``change(dict) -> object``."""
    import onnx

    proto = onnx.load(str(src))
    for prop in proto.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            prop.value = json.dumps(change(json.loads(prop.value)))
    onnx.save(proto, str(dst))
    return dst


def _set(**fields):
    return lambda d: {**d, **fields}


CASES = {
    "preprocess_not_an_object": (_set(preprocess="bilinear"), "preprocess"),
    "preprocess_size_unlike_the_graph": (lambda d: {**d, "preprocess": {**d["preprocess"], "size": 64}}, "64"),
    "no_class_names": (_set(class_names=[]), "class_names"),
    "class_names_not_a_list": (_set(class_names="t1,t2,t3"), "class_names"),
    "centroids_of_the_wrong_size": (_set(centroids=[[0.0] * 5] * 3), "centroids"),
    "centroids_unlike_the_graph": (_set(centroids=[[0.0] * 5] * 3, embedding_dim=None), "centroids"),
    "duplicate_class_names": (_set(class_names=["t1", "t1", "t2"]), "duplicates"),
    "class_name_with_comma": (_set(class_names=["t1", "t,2", "t3"]), "comma"),
    "class_name_with_quote": (_set(class_names=["t1", 't"2', "t3"]), "quote"),
    "class_name_with_newline": (_set(class_names=["t1", "t2\nx", "t3"]), "line break"),
    "metadata_not_an_object": (lambda d: [d], "JSON object"),
    "threshold_not_a_number": (_set(threshold="high"), "threshold"),
}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("meta")
    data = make_subsets_data(root / "data", k=3, n_real=3, n_gen=3, n_test=2, size=32)
    model, _, _ = make_onnx(root / "m.onnx", task="subsets", metric="l2", size=32, dim=16)
    return root, data, model


@pytest.mark.parametrize("name", sorted(CASES))
def test_backend_refuses_it_naming_the_file(name, case):
    from fprt.runtime.backends.onnx_backend import OnnxBackend

    root, _, model = case
    change, word = CASES[name]
    bad = craft(model, root / f"{name}.onnx", change)
    with pytest.raises(ModelError) as err:
        OnnxBackend(bad)
    assert str(bad) in str(err.value) and word in str(err.value)


@pytest.mark.parametrize("name", ["preprocess_not_an_object", "preprocess_size_unlike_the_graph", "no_class_names",
                                  "centroids_of_the_wrong_size", "duplicate_class_names", "class_name_with_comma"])
def test_score_prints_one_error_line_naming_the_model(name, case, tmp_path, capsys, monkeypatch):
    root, data, model = case
    change, word = CASES[name]
    bad = craft(model, tmp_path / f"{name}.onnx", change)
    out = tmp_path / "out"
    result = run_cli(["score", data, "--model", bad, "--out", out, "--no-cache", "--method", "centroid"], capsys, monkeypatch)
    assert_one_error_line(result, str(bad), word)
    assert not (out / "run.csv").exists()


def test_export_reader_refuses_it_naming_the_file(case):
    from fprt.export.metadata import load_onnx_meta

    root, _, model = case
    bad = craft(model, root / "dupes_for_export.onnx", CASES["duplicate_class_names"][0])
    with pytest.raises(ModelError, match=f"{bad}.*duplicates"):
        load_onnx_meta(bad)


@pytest.mark.parametrize("name", ["duplicate_class_names", "preprocess_not_an_object", "class_name_with_comma"])
def test_torch_checkpoint_refuses_it_naming_the_file(name, tmp_path):
    """The same schema guards a trainer checkpoint (model.safetensors carrying the metadata)."""
    from fprt.modelmeta import ModelMeta
    from fprt.preprocess import Preprocess
    from fprt.trainer.checkpoint import META_KEY, load_checkpoint, load_tensors, save_tensors

    import fprt.trainer as trainer

    model = trainer.create_model("siamese_cnn", input_size=64)
    meta = ModelMeta(model="siamese_cnn", kind="embedding", task="subsets", preprocess=Preprocess(64),
                     class_names=["t1", "t2", "t3"], model_kwargs={"input_size": 64})
    weights = tmp_path / "model.safetensors"
    save_tensors(weights, dict(model.state_dict()), {META_KEY: json.dumps(CASES[name][0](meta.to_dict()))})
    assert META_KEY in load_tensors(weights)[1]
    with pytest.raises(ModelError) as err:
        load_checkpoint(weights)
    assert str(weights) in str(err.value) and CASES[name][1] in str(err.value)


@pytest.mark.parametrize("embed_info", ["model.embed.onnx", {"file": "../../elsewhere.onnx", "sha256": "00"}, {"file": "x.onnx"}])
def test_pair_model_embed_record_of_the_wrong_shape_names_the_file(embed_info, tmp_path):
    from fprt.export.metadata import load_embed_meta

    model, _, _ = make_onnx(tmp_path / "p.onnx", kind="pair", task="membership")
    bad = craft(model, tmp_path / "crafted.onnx",
                lambda d: {**d, "extra": {**d.get("extra", {}), "export": {"embed_onnx": embed_info}}})
    with pytest.raises(ModelError, match=f"{bad}: corrupt metadata: extra.export.embed_onnx"):
        load_embed_meta(bad)
