"""INT8 calibration images default to the run's training data, in `fprt export-onnx --int8` as in `fprt bench`
(one function: fprt.export.images.calibration_folder)."""

from __future__ import annotations

import json

import pytest

from fprt.errors import FprtError
from fprt.export.images import calibration_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fprt.demo import make_demo_data

    out = tmp_path_factory.mktemp("calib") / "data"
    make_demo_data(out, task="subsets", classes=2, n_real=4, n_generated=4, n_test=2, size=32, progress=False)
    return out


def _run(tmp_path, root):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": {"root": str(root)}}))
    return run


def test_the_runs_training_data_unless_data_is_given(tmp_path, data):
    run = _run(tmp_path, data)
    assert calibration_folder(run) == data
    assert calibration_folder(run / "model.safetensors") == data  # the checkpoint file names the same run
    assert calibration_folder(run, data / "test") == data  # a folder without a training split is passed over
    assert calibration_folder(None, data) == data


def test_export_refuses_int8_when_the_runs_data_is_gone(tmp_path):
    from fprt.export import export_onnx

    run = _run(tmp_path, tmp_path / "moved-away")
    assert calibration_folder(run) is None
    with pytest.raises(FprtError, match="--int8 needs --calib DIR"):
        export_onnx(run, tmp_path / "m.onnx", int8=True, log=lambda s: None)


def test_bench_uses_the_same_rule(tmp_path, data):
    from fprt.runtime.bench import _calibration_folder, _Source

    run = _run(tmp_path, data)
    assert _calibration_folder(_Source(run, "run", None), None) == data
    assert _calibration_folder(_Source(run, "onnx", None), None) is None
