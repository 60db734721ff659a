import pytest
from typer.testing import CliRunner

from fprt.cli import app
from fprt.errors import FprtError, ModelError
from fprt.formats import FORMATS, format_for_path, get_format


def test_format_table_picks_backend_from_suffix(tmp_path):
    assert format_for_path(tmp_path).name == "torch"  # a run folder
    assert format_for_path("m.onnx").name == "onnx"
    assert format_for_path("m.PLAN").name == "tensorrt"
    assert format_for_path("m.engine").name == "tensorrt"
    assert format_for_path("w.safetensors").name == "torch"
    with pytest.raises(ModelError, match=r"m\.pt.*cannot tell"):
        format_for_path("m.pt")


def test_format_names_aliases_and_did_you_mean():
    assert get_format("TRT").name == "tensorrt"
    assert get_format("onnxruntime").name == "onnx"
    with pytest.raises(FprtError, match="Did you mean 'onnx'"):
        get_format("onxx")
    assert {f.name for f in FORMATS} == {"torch", "onnx", "tensorrt"}
    assert not get_format("tensorrt").cpu


def test_cli_help_lists_commands_and_checks_runs():
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "checks" in result.output
    result = runner.invoke(app, ["checks"])
    assert result.exit_code == 0, result.output
    for component in ("torch", "onnxruntime", "TensorRT", "nvcc", "similarity extension"):
        assert component in result.output


def test_import_fprt_is_light():
    import subprocess
    import sys

    code = "import sys, fprt, fprt.preprocess, fprt.modelmeta, fprt.formats, fprt.cli; print(sorted(m for m in ('torch', 'onnxruntime', 'tensorrt', 'ray', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
