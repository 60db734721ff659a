"""`fprt train` through the CLI on a tiny demo set."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fprt.cli import app


def test_fprt_train_writes_a_run(tmp_path, demo_subsets):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "siamese", "--data", str(demo_subsets), "--out", str(out), "--size", "64",
                                      "--epochs", "1", "--steps-per-epoch", "3", "--task", "subsets"])
    assert result.exit_code == 0, result.output
    assert "epoch 1: loss" in result.output and "trained siamese_cnn (subsets)" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["meta"]["model"] == "siamese_cnn"
    assert config["data"]["real"] == {f"t{k}": 60 for k in range(1, 6)}
    assert (out / "model.safetensors").exists() and (out / "metrics.csv").exists()
    # --resume of a finished run continues nothing and keeps the result
    again = CliRunner().invoke(app, ["train", "--resume", str(out)])
    assert again.exit_code == 0, again.output


def test_fprt_train_rejects_an_unknown_family(tmp_path, demo_subsets):
    result = CliRunner().invoke(app, ["train", "siam", "--data", str(demo_subsets), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "siamese" in result.output
