"""Fault catalogue — training inputs: numbers out of range, too few images per class to split,
a run folder's config.json / state.json of the wrong shape on ``--resume``.

On the main of 2026-12-04 these ended in tracebacks (``ValueError: Invalid learning rate`` from
torch, ``IndexError`` / ``torch.cat`` on an empty validation split) and left a half-made run folder.
"""

from __future__ import annotations

import json

import pytest
from faults_testkit import assert_one_error_line, run_cli, subsets_tree


@pytest.fixture(scope="module")
def two_per_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("train2")
    return subsets_tree(root, real={"t1": 2, "t2": 2}, generated={"t1": 2, "t2": 2})


@pytest.mark.parametrize("value", ["-1", "-1e-4", "nan", "inf"])
def test_lr_out_of_range_is_one_error_line(value, two_per_class, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    result = run_cli(["train", "classifier", "--data", two_per_class, "--out", out, "--lr", value, "--size", "32",
                      "--epochs", "1"], capsys, monkeypatch)
    assert_one_error_line(result, "--lr")
    assert not out.exists()


def test_negative_seed_names_its_option(two_per_class, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    result = run_cli(["train", "classifier", "--data", two_per_class, "--out", out, "--seed", "-3", "--size", "32",
                      "--epochs", "1"], capsys, monkeypatch)
    assert_one_error_line(result, "--seed")
    assert not out.exists()


@pytest.mark.parametrize("field, value, option", [
    ("margin", float("nan"), "--margin"), ("eval_batch_size", 0, "--eval-batch-size"),
    ("steps_per_epoch", 0, "--steps-per-epoch"), ("mined_per_anchor", 0, "--mined-per-anchor"),
])
def test_library_numbers_out_of_range_name_their_option(field, value, option, two_per_class, tmp_path):
    from fprt.errors import FprtError
    from fprt.trainer.training import train

    with pytest.raises(FprtError, match=option):
        train(two_per_class, tmp_path / "run", family="siamese", size=64, epochs=1, **{field: value})
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family", ["classifier", "features", "pair"])
def test_one_image_per_class_is_refused_before_any_folder(family, tmp_path, capsys, monkeypatch):
    data = subsets_tree(tmp_path / "data", real={"t1": 2, "t2": 2}, generated={"t1": 1, "t2": 3})
    out = tmp_path / "run"
    result = run_cli(["train", family, "--data", data, "--out", out, "--size", "32", "--epochs", "1"], capsys, monkeypatch)
    line = assert_one_error_line(result, "'t1' has 1 generated image", str(data))
    assert "'t2'" not in line  # only the class that is short
    assert not out.exists()


def test_membership_split_counts_the_real_images(tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    from faults_testkit import png

    for i in range(3):
        png(root / "real" / "used" / f"u{i}.png", 100, seed=i)
        png(root / "generated" / f"g{i}.png", 100, seed=10 + i)
    png(root / "real" / "not_used" / "n0.png", 30, seed=20)
    out = tmp_path / "run"
    result = run_cli(["train", "features", "--data", root, "--out", out, "--size", "32"], capsys, monkeypatch)
    assert_one_error_line(result, "'not_used' has 1 real image")
    assert not out.exists()


def test_training_lib_raises_data_error_naming_the_class(tmp_path):
    from fprt.errors import DataError
    from fprt.trainer.training import train

    data = subsets_tree(tmp_path / "data", real={"t1": 1, "t2": 1}, generated={"t1": 2, "t2": 1})
    with pytest.raises(DataError, match=r"'t2' has 1 generated image\(s\)"):
        train(data, tmp_path / "run", family="classifier", size=32, epochs=1)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config", [[1, 2, 3], {"train": "siamese"}, {"data": {}}, "text"])
def test_resume_with_a_config_of_the_wrong_shape_names_the_file(config, two_per_class, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(config))
    result = run_cli(["train", "classifier", "--data", two_per_class, "--resume", out, "--size", "32",
                      "--epochs", "1"], capsys, monkeypatch)
    assert_one_error_line(result, str(out / "config.json"))


def test_resume_state_of_the_wrong_shape_names_the_file(tmp_path):
    import torch

    from fprt.errors import ModelError
    from fprt.trainer.checkpoint import RunFolder

    run = RunFolder(tmp_path / "run")
    run.state_dir.mkdir(parents=True)
    run.state.write_text(json.dumps({"epoch": "3", "history": {}}))
    with pytest.raises(ModelError, match="state.json: not an fprt resume state"):
        run.load_state(torch.nn.Linear(2, 2), None)
