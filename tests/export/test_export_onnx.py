"""export_onnx on every model kind: graph interface, parity (fp32, uint8 input, fp16, int8), files written."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from fprt.errors import FprtError, ParityError
from fprt.export import export_onnx, load_onnx_meta
from fprt.export.metadata import load_embed_meta
from fprt.export.ort import make_session

from export_testlib import CLASSES, SIZE, class_image, make_model

KINDS = ["embedding", "classifier", "pair"]


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _torch_ref(model, meta, pixels):
    """Independent reference: NumPy Preprocess → the raw model (not fprt's wrapper)."""
    x = torch.from_numpy(meta.preprocess.normalize_uint8(pixels))
    with torch.no_grad():
        if meta.kind == "pair":
            y = torch.from_numpy(meta.preprocess.normalize_uint8(np.roll(pixels, 1, axis=0)))
            return {"probability": model(x, y).numpy()}
        out = model(x)
    if meta.kind == "classifier":
        return {"logits": out[0].numpy(), "embedding": out[1].numpy()}
    return {"embedding": out.numpy()}


@pytest.mark.parametrize("uint8_input", [False, True], ids=["float-input", "uint8-input"])
@pytest.mark.parametrize("kind", KINDS)
def test_export_every_kind_passes_parity(kind, uint8_input, tmp_path, dataset_dir):
    model, meta = make_model(kind)
    out = tmp_path / "model.onnx"
    lines = []
    # the default (dynamo) exporter everywhere, except the ResNet-18 uint8 case, which runs the TorchScript
    # exporter: both exporters pass the same checks, and the suite stays fast (dynamo takes ~4× longer on ResNet-18)
    exporter = "torchscript" if (kind, uint8_input) == ("classifier", True) else "auto"
    result = export_onnx(model, out, meta=meta, uint8_input=uint8_input, images=dataset_dir, exporter=exporter, log=lines.append)
    assert result.exporter == ("torchscript" if exporter == "torchscript" else "dynamo")

    # files: the model, the report (and the embed graph for pairs); nothing else
    expected = {"model.onnx", "model.onnx.parity.json"} | ({"model.embed.onnx"} if kind == "pair" else set())
    assert {p.name for p in tmp_path.iterdir()} == expected

    # graph interface: names, dtypes, dynamic batch, static sample shape
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    want_in = ["image_a", "image_b"] if kind == "pair" else ["image"]
    want_out = {"embedding": ["embedding"], "classifier": ["logits", "embedding"], "pair": ["probability"]}[kind]
    assert [i.name for i in proto.graph.input] == want_in
    assert [o.name for o in proto.graph.output] == want_out
    c = 1 if uint8_input else meta.preprocess.channels
    for i in proto.graph.input:
        assert i.type.tensor_type.elem_type == (onnx.TensorProto.UINT8 if uint8_input else onnx.TensorProto.FLOAT)
        assert _dims(i) == ["batch", c, SIZE, SIZE]
    for o in proto.graph.output:
        assert _dims(o)[0] == "batch"

    # parity figures: printed, stored, within the fp32 bar, on the real images given
    report = json.loads((tmp_path / "model.onnx.parity.json").read_text())
    assert report["passed"] and not report["synthetic_images"]
    assert "real images" in report["images"]
    batches = {b["batch"] for chk in report["checks"] for b in chk["batches"]}
    assert batches == {1, 16}
    assert result.max_abs_err_fp32 <= 1e-4
    assert any("batch  16" in ln for ln in lines)

    # independent check at a batch size the parity check did not use (dynamic batch really works)
    pixels = np.stack([class_image(i % 3, i, size=SIZE) for i in range(5)])
    sess = make_session(out)
    x = pixels[:, None] if uint8_input else meta.preprocess.normalize_uint8(pixels)
    if kind == "pair":
        y = np.roll(pixels, 1, axis=0)
        feed = {"image_a": x, "image_b": y[:, None] if uint8_input else meta.preprocess.normalize_uint8(y)}
    else:
        feed = {"image": x}
    got = dict(zip(want_out, sess.run(None, feed)))
    ref = _torch_ref(model, meta, pixels)
    for name in want_out:
        np.testing.assert_allclose(got[name], ref[name], atol=1e-4, rtol=0)

    # metadata round trip: everything the runtime needs
    back = load_onnx_meta(out)
    for field in ("model", "kind", "task", "preprocess", "class_names", "metric", "embedding_dim", "threshold"):
        assert getattr(back, field) == getattr(meta, field)
    info = back.extra["export"]
    assert info["input"] == ("uint8" if uint8_input else "float32")
    assert info["precision"] == "fp32" and info["parity"]["passed"]

    if kind == "pair":  # the embed graph: one image → embedding, checked against model.embed
        embed_path, embed_meta = load_embed_meta(out)
        assert embed_meta.extra["export"]["part"] == "embed"
        esess = make_session(embed_path)
        emb = esess.run(None, {"image": x})[0]
        with torch.no_grad():
            ref_emb = model.embed(torch.from_numpy(meta.preprocess.normalize_uint8(pixels))).numpy()
        np.testing.assert_allclose(emb, ref_emb, atol=1e-4, rtol=0)


class CountingEmbed(torch.nn.Module):
    """Disagrees with its own export: each eager call scales by a Python counter the trace froze."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.flatten(self.conv(x), 1).mean(1, keepdim=True).expand(-1, 4) * float(self.calls)


def test_parity_failure_raises_and_writes_nothing(tmp_path, dataset_dir):
    _, meta = make_model("embedding")
    lines = []
    with pytest.raises(ParityError, match=r"parity check failed, nothing written.*embedding"):
        export_onnx(CountingEmbed().eval(), tmp_path / "bad.onnx", meta=meta, images=dataset_dir, exporter="torchscript", log=lines.append)
    assert list(tmp_path.iterdir()) == []
    assert any("FAIL" in ln for ln in lines)  # the figures are printed even when it fails


def test_synthetic_images_are_labelled(tmp_path):
    model, meta = make_model("embedding")
    result = export_onnx(model, tmp_path / "m.onnx", meta=meta, batch_sizes=(1, 4), exporter="torchscript", log=lambda s: None)
    report = json.loads(result.parity_path.read_text())
    assert report["synthetic_images"] is True and "SYNTHETIC" in report["images"]
    assert "SYNTHETIC" in result.report_lines()[0]


@pytest.mark.parametrize("uint8_input", [True, False], ids=["uint8-input", "float-input"])
def test_fp16_export_keeps_its_io_types_and_passes_fp16_bars(tmp_path, dataset_dir, uint8_input):
    model, meta = make_model("embedding")
    result = export_onnx(model, tmp_path / "m16.onnx", meta=meta, fp16=True, uint8_input=uint8_input, images=dataset_dir,
                         log=lambda s: None)
    proto = onnx.load(str(result.path))
    want = onnx.TensorProto.UINT8 if uint8_input else onnx.TensorProto.FLOAT
    assert {i.type.tensor_type.elem_type for i in proto.graph.input} == {want}
    assert {o.type.tensor_type.elem_type for o in proto.graph.output} == {onnx.TensorProto.FLOAT}
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    fp16 = [r for r in result.parity if r.precision == "fp16"]
    assert fp16 and all(r.passed for r in fp16)
    worst = min(o["min_cosine"] for r in fp16 for b in r.batches for o in b["outputs"])
    assert 0.999 <= worst < 1.0  # really reduced precision, within the bar
    assert load_onnx_meta(result.path).extra["export"]["precision"] == "fp16"


def test_int8_export_on_labelled_calibration_passes_gate(tmp_path, dataset_dir, embedding_with_centroids):
    model, meta = embedding_with_centroids
    result = export_onnx(model, tmp_path / "m8.onnx", meta=meta, int8=True, calib=dataset_dir, log=lambda s: None)
    proto = onnx.load(str(result.path))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    gate = result.gates["main"]
    assert gate.passed and gate.rule == "nearest centroid"
    assert gate.n_images == 48 and gate.accuracy_fp32 is not None
    # the gate's figures, recomputed independently: nearest centroid on ORT outputs against labels
    from fprt.export.images import calibration_set

    calib = calibration_set(dataset_dir, meta.preprocess)
    assert len(calib) == 48 and calib.labels.count("t2") == 16
    emb8 = make_session(result.path).run(None, {"image": calib.pixels[:, None]})[0]  # a uint8-input graph (the default)
    cents = np.asarray(meta.centroids)
    pred = ((emb8[:, None, :] - cents[None]) ** 2).sum(-1).argmin(1)
    acc8 = float((np.array(CLASSES)[pred] == np.array(calib.labels)).mean())
    assert acc8 == pytest.approx(gate.accuracy_int8)
    assert gate.accuracy_fp32 - gate.accuracy_int8 <= 0.02
    assert gate.accuracy_fp32 > 0.8  # the classes are separable: the gate measures something
    report = json.loads(result.parity_path.read_text())
    assert report["int8_gate"]["main"]["passed"]


def test_int8_export_on_demo_data_passes_gate(tmp_path, demo_dir, demo_embedding_with_centroids):
    model, meta = demo_embedding_with_centroids
    lines = []
    result = export_onnx(model, tmp_path / "demo8.onnx", meta=meta, int8=True, calib=demo_dir, log=lines.append)
    gate = result.gates["main"]
    assert gate.passed and gate.accuracy_fp32 is not None and gate.n_images == 48  # 3 subsets × (8 real + 8 generated)
    assert "labelled calibration images" in gate.images and "subsets" in gate.images
    assert gate.min_cosine >= 0.98 and gate.accuracy_fp32 - gate.accuracy_int8 <= 0.02
    assert any("int8 gate" in ln for ln in lines) and any("accuracy fp32" in ln for ln in lines)
    assert not result.synthetic_images and str(demo_dir) in result.images


def test_int8_pair_model_gates_both_graphs(tmp_path, demo_dir):
    model, meta = make_model("pair")
    result = export_onnx(model, tmp_path / "p8.onnx", meta=meta, int8=True, calib=demo_dir, batch_sizes=(1, 4),
                         exporter="torchscript", log=lambda s: None)
    assert set(result.gates) == {"main", "embed"} and all(g.passed for g in result.gates.values())
    assert result.gates["main"].rule == "pair probability > 0.5"
    assert result.gates["embed"].rule.endswith("fp32 top-1 within INT8 top-5")
    for path in (result.path, result.embed_path):
        assert "QuantizeLinear" in {n.op_type for n in onnx.load(str(path)).graph.node}
    load_embed_meta(result.path)


def test_int8_gate_refusal_writes_nothing(tmp_path, dataset_dir, embedding_with_centroids):
    from fprt.export.precision import Int8Gate

    model, meta = embedding_with_centroids
    with pytest.raises(ParityError, match="INT8 export refused by the accuracy gate: row cosine"):
        export_onnx(model, tmp_path / "m8.onnx", meta=meta, int8=True, calib=dataset_dir,
                    gate=Int8Gate(min_cosine=0.999999), exporter="torchscript", log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fp16": True, "int8": True}, "exclusive"),
        ({"int8": True}, "--int8 needs --calib"),
        ({"calib": "x"}, "only used with --int8"),
    ],
)
def test_option_errors(tmp_path, kwargs, message):
    model, meta = make_model("embedding")
    with pytest.raises(FprtError, match=message):
        export_onnx(model, tmp_path / "m.onnx", meta=meta, log=lambda s: None, **kwargs)
    with pytest.raises(FprtError, match=r"must end in \.onnx"):
        export_onnx(model, tmp_path / "m.bin", meta=meta, log=lambda s: None)


def test_failed_write_keeps_the_previous_export(tmp_path, monkeypatch):
    import fprt.io

    model, meta = make_model("pair")
    out = tmp_path / "p.onnx"
    export_onnx(model, out, meta=meta, batch_sizes=(1, 2), exporter="torchscript", log=lambda s: None)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = fprt.io.atomic_write_bytes

    def failing(path, data):
        if str(path).endswith(".parity.json.export-staging"):
            raise OSError("disk full")
        return real(path, data)

    monkeypatch.setattr(fprt.io, "atomic_write_bytes", failing)
    other, _ = make_model("pair", seed=1)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(other, out, meta=meta, batch_sizes=(1, 2), exporter="torchscript", log=lambda s: None)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old files intact, no staging left
    load_embed_meta(out)  # and still consistent with each other
