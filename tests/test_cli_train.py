"""`fprt train`: --resume RUN from the run folder alone, byte-identical run files for one seed, and the
random-weights warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TRAIN = ["--size", "64", "--epochs", "1", "--steps-per-epoch", "1"]


@pytest.fixture(scope="module")
def tiny_subsets(tmp_path_factory):
    from fprt.demo import make_demo_data

    out = tmp_path_factory.mktemp("cli-train") / "data"
    make_demo_data(out, task="subsets", classes=2, n_real=8, n_generated=8, n_test=2, size=64, progress=False)
    return out


def _fprt(*args):
    return subprocess.run([sys.executable, "-m", "fprt", *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FPRT_NO_PROGRESS": "1"})


def test_two_trainings_with_one_seed_write_identical_bytes(tiny_subsets, tmp_path):
    """Two processes (the safetensors writer orders its metadata by a per-process hash seed)."""
    for run in ("a", "b"):
        p = _fprt("train", "siamese", "--data", tiny_subsets, "--out", tmp_path / run, *TRAIN, "--seed", "3")
        assert p.returncode == 0, p.stderr
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_canonical_header_sorts_metadata_and_keeps_tensors():
    import torch
    from safetensors.torch import load, save

    from fprt.trainer.checkpoint import canonical_safetensors

    tensors = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.int64)}
    a = canonical_safetensors(save(tensors, metadata={"z": "1", "format": "pt", "é": "ü"}))
    b = canonical_safetensors(save(tensors, metadata={"é": "ü", "format": "pt", "z": "1"}))
    assert a == b
    header = json.loads(a[8 : 8 + int.from_bytes(a[:8], "little")])
    assert list(header["__metadata__"]) == ["format", "z", "é"]
    assert {k: v.tolist() for k, v in load(a).items()} == {k: v.tolist() for k, v in tensors.items()}


def test_resume_from_the_run_folder_alone(tiny_subsets, tmp_path):
    from typer.testing import CliRunner

    from fprt.cli import app

    run = tmp_path / "run"
    first = CliRunner().invoke(app, ["train", "siamese", "--data", str(tiny_subsets), "--out", str(run), *TRAIN,
                                     "--lr", "0.001", "--seed", "5"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", "2"])  # only --epochs given
    assert again.exit_code == 0, again.output
    assert "epoch 2: loss" in again.output and "epoch 1:" not in again.output
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["epochs"] == 2 and saved["lr"] == 0.001 and saved["seed"] == 5 and saved["steps_per_epoch"] == 1
    changed = CliRunner().invoke(app, ["train", "--resume", str(run), "--seed", "6"])  # a real change is refused
    assert changed.exit_code != 0 and "seed: run has 5, now 6" in str(changed.exception)


def test_random_backbone_warning(caplog):
    from fprt.trainer.models import create_model
    from fprt.trainer.models.backbones import random_backbones
    from fprt.trainer.training import _warn_random_backbone

    model = create_model("classifier_resnet18", num_classes=2, in_chans=1)
    assert random_backbones(model) == ["resnet18"]
    with caplog.at_level("WARNING", logger="fprt"):
        _warn_random_backbone(model, "classifier_resnet18", None)
        _warn_random_backbone(model, "classifier_resnet18", "weights.safetensors")
    assert len(caplog.records) == 1 and "random weights" in caplog.text and "--weights FILE" in caplog.text
    assert random_backbones(create_model("siamese_cnn")) == []
