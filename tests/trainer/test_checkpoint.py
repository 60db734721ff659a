"""Checkpoints: safetensors only, exact round trips, clear errors, no unpickling."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from fprt.errors import ModelError
from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess
from fprt.trainer import create_model, load_checkpoint, read_meta
from fprt.trainer.checkpoint import (
    RunFolder,
    load_tensors,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    save_tensors,
)


def _meta(name="siamese_cnn", **kw):
    return ModelMeta(model=name, kind="embedding", task="subsets", preprocess=Preprocess(64), class_names=["t1", "t2"],
                     model_kwargs=kw, metric="l2", embedding_dim=256, centroids=[[0.0] * 256, [1.0] * 256])


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make every pickle-based loader fail: loading must not need them."""
    import pickle

    def refuse(*a, **k):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.mark.parametrize("name, kwargs, kind", [
    ("siamese_cnn", {"input_size": 64}, "embedding"),
    ("classifier_resnet18", {"num_classes": 2, "in_chans": 1}, "classifier"),
    ("pair_xattn", {"backbone": "cnn", "in_chans": 1, "dim": 32, "heads": 2}, "pair"),
])
def test_saved_model_reloads_to_identical_outputs(tmp_path, no_unpickling, name, kwargs, kind):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    meta = ModelMeta(model=name, kind=kind, task="subsets", preprocess=Preprocess(64, channels=1), class_names=["t1", "t2"],
                     model_kwargs=kwargs, metric="l2")
    run = RunFolder(tmp_path / "run")
    saved = run.save_model(model, meta, {"train": {}})
    x = torch.rand(3, 1, 64, 64)
    for path in (run.root, run.weights):
        loaded, got = load_checkpoint(path)
        assert not loaded.training
        assert got.checkpoint_sha256 == saved.checkpoint_sha256 and got.model == name and got.kind == kind
        with torch.no_grad():
            if kind == "pair":
                ref, out = model(x, x.flip(0)), loaded(x, x.flip(0))
                torch.testing.assert_close(loaded.embed(x), model.embed(x), rtol=0, atol=0)
            else:
                ref, out = model(x), loaded(x)
        for r, o in zip(ref if isinstance(ref, tuple) else (ref,), out if isinstance(out, tuple) else (out,)):
            torch.testing.assert_close(o, r, rtol=0, atol=0)


def test_the_safetensors_file_alone_is_enough(tmp_path):
    torch.manual_seed(1)
    model = create_model("siamese_cnn", input_size=64)
    run = RunFolder(tmp_path / "run")
    run.save_model(model, _meta(input_size=64), {"train": {}})
    lone = tmp_path / "elsewhere" / "model.safetensors"
    lone.parent.mkdir()
    shutil.copy(run.weights, lone)
    loaded, meta = load_checkpoint(lone)
    assert meta.centroids[1] == [1.0] * 256 and meta.preprocess == Preprocess(64)
    assert read_meta(lone).checkpoint_sha256 == meta.checkpoint_sha256


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="no such training run folder or checkpoint"):
        load_checkpoint(tmp_path / "missing")
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"\x80\x04")
    with pytest.raises(ModelError, match="never unpickles"):
        load_checkpoint(pt)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError, match="not a readable safetensors checkpoint"):
        load_checkpoint(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="not an fprt training run"):
        load_checkpoint(empty)
    # weights that do not fit the model the metadata names
    run = RunFolder(tmp_path / "run")
    run.save_model(create_model("siamese_cnn", input_size=128), _meta(input_size=64), {"train": {}})
    with pytest.raises(ModelError, match="do not fit.*fc.weight"):
        load_checkpoint(run.root)


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    torch.manual_seed(2)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    tensors, info = optimizer_state_to_tensors(opt)
    import json

    save_tensors(tmp_path / "opt.safetensors", tensors)
    tensors, _ = load_tensors(tmp_path / "opt.safetensors")
    info = json.loads(json.dumps(info))  # what state.json holds
    twin = torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(twin.parameters(), lr=1e-3)
    opt2.load_state_dict(optimizer_state_from_tensors(tensors, info))
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (twin, opt2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)


def test_metrics_csv_is_written_atomically(tmp_path):
    from fprt.trainer.checkpoint import read_metrics

    run = RunFolder(tmp_path)
    run.write_metrics([{"epoch": 1, "train_loss": 0.5, "val_metric": np.float64(0.25)}, {"epoch": 2, "train_loss": 0.25, "val_metric": 0.5}])
    rows = read_metrics(run.metrics)
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[0]["val_metric"]) == 0.25
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
