"""`fprt info DIR` (typer's CliRunner) and summarize(): layout, counts, sizes/modes, bad files, on test-made
datasets and on the demo data of both tasks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from data_testkit import make_tree, pattern, subsets_spec, truncated_png, write_dicom, write_png
from typer.testing import CliRunner

from fprt.cli import app
from fprt.data import summarize
from fprt.errors import DataError

runner = CliRunner()


def _info(*args: str):
    result = runner.invoke(app, ["info", *map(str, args)])
    return result


def _row(output: str, *cells: str) -> bool:
    """True when one table row holds these cells in this order (rich draws │ between cells)."""
    pattern_ = r"│\s*" + r"\s*│\s*".join(re.escape(c) for c in cells) + r"\s*│"
    return re.search(pattern_, output) is not None


def test_info_prints_layout_counts_sizes_and_bad_files(tmp_path):
    make_tree(tmp_path / "train", subsets_spec(3, per_class=2))
    make_tree(tmp_path / "test", {"generated_unknown": 4})
    bad = truncated_png(tmp_path / "test" / "generated_unknown" / "zz_broken.png")
    result = _info(tmp_path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "subsets training: real/t1..t3 + generated/gen_t1..gen_t3 (K=3) in train/" in out
    assert "subsets test: generated_unknown/ in test/" in out
    assert "classes t1, t2, t3" in out
    for cls in ("t1", "t2", "t3"):
        assert _row(out, "train real", cls, "2", f"train/real/{cls}")
        assert _row(out, "train generated", cls, "3", f"train/generated/gen_{cls}")
    assert _row(out, "test generated", "generated_unknown", "5", "test/generated_unknown")
    assert _row(out, "total", "", "20")
    # sizes/modes come from headers: the truncated file's header is intact (64x64), its pixel data is not
    assert "8x8 (19), 64x64 (1)" in out and "PNG L (20)" in out and "from all 20 files" in out
    assert "bad files: 1 of 20 decoded" in out
    assert "test/generated_unknown/zz_broken.png (test generated): cannot decode PNG pixel data (truncated" in out
    assert bad.exists()


def test_info_json_and_sampling(tmp_path):
    make_tree(tmp_path, {"real_used": 3, "real_not_used": 4, "generated": 5})
    write_png(tmp_path / "generated" / "rgb.png", pattern(1, (8, 24)).reshape(8, 8, 3))
    write_dicom(tmp_path / "real_used" / "slice.dcm", np.zeros((16, 16), np.uint16), bits_stored=12)
    result = _info(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["task"] == "membership" and data["classes"] == ["not_used", "used"]
    assert data["counts"]["real"] == {"not_used": 4, "used": 4} and data["counts"]["generated"] == {"generated": 6}
    assert data["counts"]["total"] == 14 and data["bad_files"] == []
    assert data["images"]["sizes"] == {"8x8": 13, "16x16": 1}
    assert data["images"]["modes"] == {"PNG L": 12, "PNG RGB": 1, "DICOM MONOCHROME2 12-bit": 1}
    assert data["check"] == {"level": "decode", "scope": "all", "checked": 14}

    sampled = summarize(tmp_path, sample=5, check="sample")
    assert sampled["images"]["inspected"] == 5 and sampled["images"]["sampled"]
    assert sampled["check"]["checked"] == 5
    result = _info(tmp_path, "--sample", "5", "--check", "none")
    assert result.exit_code == 0 and "from a sample of 5 of 14 files" in result.output
    assert "not checked (--check none)" in result.output


def test_info_errors(tmp_path):
    make_tree(tmp_path, {"images": 1})
    result = _info(tmp_path)
    assert result.exit_code != 0 and isinstance(result.exception, DataError)
    assert "unknown dataset layout" in str(result.exception)
    result = _info(tmp_path, "--check", "some")
    assert result.exit_code == 2 and "--check" in result.output


def test_info_via_main_prints_one_error_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "fprt", "info", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"fprt: error: {tmp_path / 'missing'}: no such folder"


# ---------------------------------------------------------------------------------------------- demo data
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import fprt.demo as demo_module  # an ImportError must fail these tests, never skip them
    root = tmp_path_factory.mktemp("demo")
    subsets = demo_module.make_demo_data(
        root / "subsets", "subsets", classes=3, n_real=4, n_generated=5, n_test=2, size=32, workers=1, progress=False,
        generated_naming="t",
    )
    membership = demo_module.make_demo_data(
        root / "membership", "membership", n_used=3, n_not_used=4, n_generated=5, n_test_used=2, n_test_not_used=3,
        n_test_generated=6, size=32, workers=1, progress=False,
    )
    return subsets, membership


def test_info_on_demo_subsets(demo):
    info = demo[0]
    result = _info(info.out)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "subsets training: real/t1..t3 + generated/t1..t3 (K=3) in train/" in out
    for cls in ("t1", "t2", "t3"):
        assert _row(out, "train real", cls, "4") and _row(out, "train generated", cls, "5")
    assert _row(out, "test generated", "generated_unknown", str(info.counts["test_generated"]))
    assert _row(out, "total", "", str(info.images))
    assert f"32x32 ({info.images})" in out and "bad files none" in out.replace(":", "")
    # the labels beside the test split cover every test image, by id
    from fprt.data import discover, read_labels

    layout = discover(info.out)
    labels = read_labels(info.out / "test" / "labels.csv", allowed=layout.classes)
    assert sorted(labels) == sorted(p.stem for p in layout.test_generated)


def test_info_on_demo_membership(demo):
    info = demo[1]
    data = json.loads(_info(info.out, "--json").output)
    assert data["task"] == "membership"
    assert data["counts"]["real"] == {"not_used": 4, "used": 3}
    assert data["counts"]["generated"] == {"generated": 5}
    assert data["counts"]["test_real"] == 5 and data["counts"]["test_generated"] == 6
    assert data["counts"]["total"] == info.images and data["bad_files"] == []
    out = _info(info.out).output
    assert _row(out, "train real", "used", "3") and _row(out, "test real", "real_unknown", "5")
    from fprt.data import discover, read_labels

    labels = read_labels(info.out / "test" / "labels.csv", allowed=("0", "1"))  # 1 = used, for real_unknown images
    assert sorted(labels) == sorted(p.stem for p in discover(info.out).test_real)
    assert sorted(labels.values()) == ["0", "0", "0", "1", "1"]
