"""The trainer's own models through export: from a run folder / checkpoint, via the CLI, and every family."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
import torch

from fprt.export import export_onnx, load_onnx_meta
from fprt.export.ort import make_session
from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess

import fprt.trainer.checkpoint  # noqa: E402,F401 - an ImportError here must fail these tests, never skip them


def _run_folder(tmp_path, name, kwargs, meta_kw, data_root=None):
    """A run folder as `fprt train` leaves it: model.safetensors carrying the meta + config.json."""
    from fprt.trainer import create_model
    from fprt.trainer.checkpoint import RunFolder

    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    meta = ModelMeta(model=name, model_kwargs=kwargs, **meta_kw)
    run = RunFolder(tmp_path / f"run_{name}")
    run.root.mkdir(parents=True, exist_ok=True)
    run.save_model(model, meta, {"data": {"root": str(data_root)} if data_root else {}})
    return run.root, model, meta


def test_cli_exports_a_run_on_its_training_data(tmp_path, dataset_dir, monkeypatch, capsys):
    from fprt.cli import main

    run, model, meta = _run_folder(
        tmp_path, "siamese_cnn", {"input_size": 64, "embedding_dim": 64},
        dict(kind="embedding", task="subsets", preprocess=Preprocess(size=64), class_names=["t1", "t2", "t3"],
             metric="l2", embedding_dim=64, centroids=[[0.0] * 64, [0.1] * 64, [0.2] * 64]),
        data_root=dataset_dir,
    )
    out = tmp_path / "siamese.onnx"
    monkeypatch.setattr(sys, "argv", ["fprt", "export-onnx", str(run), "--out", str(out), "--uint8-input"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "parity: ONNX Runtime vs PyTorch on 32 real images from the run's training data" in printed
    assert "batch  16  embedding" in printed and "wrote" in printed
    back = load_onnx_meta(out)
    assert back.centroids == meta.centroids and back.model_kwargs == {"input_size": 64, "embedding_dim": 64}
    assert back.checkpoint_sha256 == __import__("fprt.io", fromlist=["x"]).sha256_file(run / "model.safetensors")
    assert back.extra["export"]["input"] == "uint8"
    # the graph takes raw pixels: same numbers as the checkpoint on NumPy-preprocessed floats
    pixels = np.random.default_rng(1).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    got = make_session(out).run(None, {"image": pixels[:, None]})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(meta.preprocess.normalize_uint8(pixels))).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_cli_export_errors_exit_2(tmp_path, monkeypatch, capsys):
    from fprt.cli import main

    for argv, message in [
        ([str(tmp_path / "nope"), "--out", str(tmp_path / "m.onnx")], "no such"),
        ([str(tmp_path), "--out", str(tmp_path / "m.onnx"), "--int8"], "--int8 needs --calib"),
    ]:
        monkeypatch.setattr(sys, "argv", ["fprt", "export-onnx", *argv])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


TRAINER_MODELS = [
    # name, create_model kwargs, ModelMeta fields, exporter. The default (dynamo) exporter for pair_xattn
    # (cross-attention: the op set the tiny models lack); the ResNet-18 models use the TorchScript
    # exporter here only to keep the suite fast — the dynamo path on ResNet-18 is test_export_onnx's
    # classifier case.
    ("pair_xattn", {"backbone": "cnn", "in_chans": 1, "dim": 32, "heads": 2},
     dict(kind="pair", task="membership", preprocess=Preprocess(size=64), class_names=["not_used", "used"], metric="cosine", embedding_dim=32),
     "auto"),
    ("classifier_resnet18", {"num_classes": 3},
     dict(kind="classifier", task="subsets", preprocess=Preprocess(size=64, channels=3, normalize="imagenet"),
          class_names=["t1", "t2", "t3"], metric="cosine", embedding_dim=512), "torchscript"),
    ("features_resnet18", {},
     dict(kind="embedding", task="subsets", preprocess=Preprocess(size=64, channels=3, normalize="imagenet"),
          class_names=["t1", "t2", "t3"], metric="cosine", embedding_dim=512), "torchscript"),
]


@pytest.mark.parametrize("name, kwargs, meta_kw, exporter", TRAINER_MODELS, ids=[m[0] for m in TRAINER_MODELS])
def test_trainer_model_families_export_with_parity(name, kwargs, meta_kw, exporter, tmp_path, dataset_dir):
    run, model, meta = _run_folder(tmp_path, name, kwargs, meta_kw)
    lines = []
    result = export_onnx(run / "model.safetensors", tmp_path / f"{name}.onnx", images=dataset_dir, exporter=exporter, log=lines.append)
    assert result.exporter == ("dynamo" if exporter == "auto" else exporter)
    assert all(r.passed for r in result.parity) and result.max_abs_err_fp32 <= 1e-4
    report = json.loads(result.parity_path.read_text())
    assert report["passed"] and report["model"] == name
    proto = onnx.load(str(result.path))
    assert [o.name for o in proto.graph.output] == {"pair": ["probability"], "classifier": ["logits", "embedding"],
                                                     "embedding": ["embedding"]}[meta.kind]
    assert [d.dim_param or d.dim_value for d in proto.graph.output[-1].type.tensor_type.shape.dim][1:] == (
        [] if meta.kind == "pair" else [meta.embedding_dim])
    if meta.kind == "pair":
        assert result.embed_path.exists() and {r.graph for r in result.parity} == {"main", "embed"}
    # a torchvision backbone gets the INT8 hint (it pays on CPUs); the CNN pair scorer does not
    assert any(ln.startswith("hint:") for ln in lines) == (name != "pair_xattn")
