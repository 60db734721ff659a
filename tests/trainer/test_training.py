"""The training loop on small in-memory data: learning, resume determinism, early stopping, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fprt.errors import FprtError
from fprt.trainer import TrainConfig, load_checkpoint, train
from fprt.trainer.checkpoint import load_tensors, read_metrics
from fprt.trainer.pairs import validation_split

FAST = dict(family="siamese", size=48, batch_size=16, lr=1e-3, patience=0)


def _nearest_centroid_accuracy(model, meta, data, seed=0, fraction=0.1):
    _, va = validation_split(data.generated_labels, fraction, seed)
    x = meta.preprocess.module()(data.generated.get(va))
    with torch.no_grad():
        emb = model(x)
    pred = torch.cdist(emb, torch.tensor(meta.centroids, dtype=torch.float32)).argmin(1).numpy()
    return float((pred == data.generated_labels[va]).mean())


def test_siamese_learns_stripes_and_the_checkpoint_is_what_was_validated(tmp_path, stripes_data):
    result = train(stripes_data, tmp_path / "run", TrainConfig(**FAST, epochs=4))
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    before, best = float(rows[0]["val_metric"]), result.best_metric
    # 3 classes (chance 1/3); 6 held-out generated images (2 per class). Measured: 1.0 from epoch 1.
    assert best >= 5 / 6 and best > before
    model, meta = load_checkpoint(tmp_path / "run")
    assert meta.task == "subsets" and meta.metric == "l2" and len(meta.centroids) == 3
    assert meta.extra["best_epoch"] == result.best_epoch
    assert _nearest_centroid_accuracy(model, meta, stripes_data) == pytest.approx(best)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["status"] == "finished" and config["train"]["preprocess"]["size"] == 48
    assert config["meta"]["checkpoint_sha256"] == meta.checkpoint_sha256
    for plot in ("curves.png", "confusion.png", "pca.png"):
        assert (tmp_path / "run" / "plots" / plot).stat().st_size > 1000


def _final_weights(run):
    return load_tensors(run / "state" / "last.safetensors")[0], load_tensors(run / "model.safetensors")[0]


@pytest.mark.parametrize("interrupt_at_step", [7, 10], ids=["mid-epoch", "epoch-boundary"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, stripes_data, monkeypatch, interrupt_at_step):
    cfg = TrainConfig(**FAST, epochs=3, steps_per_epoch=5)
    train(stripes_data, tmp_path / "straight", cfg)

    real_step = torch.optim.Adam.step
    calls = {"n": 0}

    def flaky_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > interrupt_at_step:
            raise KeyboardInterrupt("killed")
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", flaky_step)
    with pytest.raises(KeyboardInterrupt):
        train(stripes_data, tmp_path / "resumed", cfg)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    state = json.loads((tmp_path / "resumed" / "state" / "state.json").read_text())
    assert state["epoch"] == interrupt_at_step // 5  # the last finished epoch
    with pytest.raises(FprtError, match="pass --resume"):
        train(stripes_data, tmp_path / "resumed", cfg)
    result = train(stripes_data, tmp_path / "resumed", cfg, resume=True)
    assert result.status == "finished"

    for a, b in zip(_final_weights(tmp_path / "straight"), _final_weights(tmp_path / "resumed")):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    straight = read_metrics(tmp_path / "straight" / "metrics.csv")
    resumed = read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert [(r["epoch"], r["train_loss"], r["val_metric"]) for r in straight] == [
        (r["epoch"], r["train_loss"], r["val_metric"]) for r in resumed
    ]


@pytest.mark.parametrize("miner", ["hard", "none"], ids=["self-pairs", "paper-pairs"])
def test_membership_resume_is_exact(tmp_path, stripes_membership, monkeypatch, miner):
    cfg = TrainConfig(**{**FAST, "batch_size": 8}, epochs=2, steps_per_epoch=3, miner=miner, val_fraction=0.2)
    straight = train(stripes_membership, tmp_path / "straight", cfg)
    assert straight.metric_name == "auc" and straight.meta.threshold is not None
    real_step = torch.optim.Adam.step
    calls = {"n": 0}
    kill_at = straight.history[1]["steps"] + 2  # the second step of epoch 2 (paper pairs: 2 steps an epoch here)

    def flaky_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] >= kill_at:
            raise KeyboardInterrupt("killed")
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", flaky_step)
    with pytest.raises(KeyboardInterrupt):
        train(stripes_membership, tmp_path / "resumed", cfg)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    train(stripes_membership, tmp_path / "resumed", cfg, resume=True)
    for a, b in zip(_final_weights(tmp_path / "straight"), _final_weights(tmp_path / "resumed")):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_resume_refuses_other_arguments_but_may_extend_epochs(tmp_path, stripes_data):
    cfg = TrainConfig(**FAST, epochs=1, steps_per_epoch=2)
    train(stripes_data, tmp_path / "run", cfg)
    with pytest.raises(FprtError, match="arguments differ.*lr"):
        train(stripes_data, tmp_path / "run", cfg, resume=True, lr=0.5)
    result = train(stripes_data, tmp_path / "run", cfg, resume=True, epochs=2)
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    with pytest.raises(FprtError, match="no training run there"):
        train(stripes_data, tmp_path / "other", cfg, resume=True)


def test_early_stopping_keeps_the_best_epoch(tmp_path, stripes_data):
    # lr 0: no epoch beats the untrained model (epoch 0, the first candidate), so patience 2 stops after epoch 2
    # and the run keeps the untrained weights
    result = train(stripes_data, tmp_path / "run", TrainConfig(**{**FAST, "lr": 0.0, "patience": 2}, epochs=10, steps_per_epoch=1))
    assert result.status == "early_stopped" and result.best_epoch == 0
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    assert load_checkpoint(tmp_path / "run")[1].extra["best_epoch"] == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["status"] == "early_stopped"


def test_classifier_and_pair_scorer_learn_stripes(tmp_path, stripes_data):
    clf = train(stripes_data, tmp_path / "clf", TrainConfig(family="classifier", size=48, channels=1, epochs=3,
                                                            batch_size=16, lr=1e-3, patience=0))
    assert clf.best_metric >= 5 / 6 and clf.best_metric > clf.history[0]["val_metric"]
    model, meta = load_checkpoint(tmp_path / "clf")
    assert meta.kind == "classifier" and meta.model_kwargs == {"in_chans": 1, "num_classes": 3}
    pair = train(stripes_data, tmp_path / "pair", TrainConfig(family="pair", size=48, channels=1, epochs=4, batch_size=16,
                                                              lr=1e-3, patience=0, model_kwargs={"backbone": "cnn", "dim": 32}))
    # pair scorer: class of the references with the highest mean probability; measured 1.0 after 3 epochs
    assert pair.best_metric >= 4 / 6 and pair.best_metric > pair.history[0]["val_metric"]
    model, meta = load_checkpoint(tmp_path / "pair")
    assert meta.kind == "pair" and meta.metric == "cosine"


def test_features_head_round_trip(tmp_path, stripes_data):
    from fprt.trainer.heads import apply_head, fit_head

    result = train(stripes_data, tmp_path / "feat", TrainConfig(family="features", model="features_resnet18", size=48,
                                                                channels=1, head="logreg"))
    model, meta = load_checkpoint(tmp_path / "feat")
    assert meta.head["type"] == "logreg" and meta.kind == "embedding"
    # the stored head, applied in NumPy to the reloaded backbone's features, is scikit-learn's own
    tr, va = validation_split(stripes_data.generated_labels, 0.1, 0)
    pre = meta.preprocess.module()
    with torch.no_grad():
        real = model(pre(stripes_data.real.get(np.arange(len(stripes_data.real))))).numpy()
        gen = model(pre(stripes_data.generated.get(np.arange(len(stripes_data.generated))))).numpy()
    X = np.concatenate([real, gen[tr]])
    y = np.concatenate([stripes_data.real_labels, stripes_data.generated_labels[tr]])
    _, est = fit_head("logreg", X, y, n_classes=3)
    pred, _ = apply_head(meta.head, gen[va])
    np.testing.assert_array_equal(pred, est.predict(gen[va].astype(np.float64)))
    assert result.best_metric == pytest.approx(float((pred == stripes_data.generated_labels[va]).mean()))


def test_clear_errors(tmp_path, stripes_data):
    with pytest.raises(FprtError, match="is a classifier model, not a siamese one"):
        train(stripes_data, tmp_path / "a", TrainConfig(family="siamese", model="classifier_resnet18"))
    with pytest.raises(FprtError, match="in-memory images are 48"):
        train(stripes_data, tmp_path / "b", TrainConfig(family="siamese"))
    with pytest.raises(FprtError, match="val-fraction"):
        train(stripes_data, tmp_path / "c", TrainConfig(**FAST, val_fraction=0.0))
    with pytest.raises(FprtError, match="--task membership"):
        train(stripes_data, tmp_path / "d", TrainConfig(**FAST, task="membership"))
