"""Fault catalogue — an image whose file name is not valid UTF-8 (e.g. Latin-1 bytes from an old archive).

On the main of 2026-12-04 ``fprt score`` did all the work and then crashed writing run.csv
(``UnicodeEncodeError: surrogates not allowed``). Now the names are checked before any work and
the error names the file, printable (the odd bytes shown as ``\\xNN``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from faults_testkit import assert_one_error_line, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_testkit import make_onnx, make_subsets_data  # noqa: E402

from fprt.errors import DataError  # noqa: E402


def _latin1_name(folder: Path, old: str) -> Path:
    """Rename ``folder/old`` to a name holding the byte 0xE9 (é in Latin-1, invalid as UTF-8)."""
    src = folder / old
    dst = os.fsencode(str(folder)) + b"/caf\xe9_" + os.fsencode(old)
    os.rename(src, dst)
    return Path(os.fsdecode(dst))


@pytest.fixture
def case(tmp_path):
    data = make_subsets_data(tmp_path / "data", k=3, n_real=3, n_gen=3, n_test=2)
    model, _, _ = make_onnx(tmp_path / "m.onnx", task="subsets", metric="l2")
    return data, model


def test_score_refuses_before_any_work_naming_the_file(case, tmp_path):
    from fprt.runtime import score

    data, model = case
    odd = _latin1_name(data / "test" / "generated_unknown", "u0001.png")
    with pytest.raises(DataError) as err:
        score(model, data, tmp_path / "out", cache=tmp_path / "cache", progress=False, method="centroid")
    msg = str(err.value)
    assert "caf\\xe9_u0001.png" in msg and "not valid UTF-8" in msg
    msg.encode("utf-8")  # the message itself can be printed
    assert not (tmp_path / "out" / "run.csv").exists()
    assert not list((tmp_path / "cache").rglob("*.shard"))  # no model work was done
    assert odd.exists()


def test_cli_prints_one_error_line(case, tmp_path, capsys, monkeypatch):
    data, model = case
    _latin1_name(data / "test" / "generated_unknown", "u0002.png")
    result = run_cli(["score", data, "--model", model, "--out", tmp_path / "out", "--no-cache", "--method", "centroid"],
                     capsys, monkeypatch)
    assert_one_error_line(result, "caf\\xe9_u0002.png")


def test_check_ids_names_every_such_file(tmp_path):
    from fprt.runtime.outputs import RunCsvFormat, check_ids

    paths = [tmp_path / "a.png", Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/b\xff.png")), tmp_path / "c.png"]
    with pytest.raises(DataError, match=r"1 test image file name\(s\) are not valid UTF-8.*b\\xff\.png"):
        check_ids(paths, RunCsvFormat())


def test_reference_image_named_in_scores_csv_is_written_escaped(case, tmp_path):
    """A reference image is never an id; it appears in scores.csv's neighbours, its odd byte as \\xNN."""
    from fprt.runtime import score

    data, model = case
    _latin1_name(data / "train" / "real" / "t1", "r0_000.png")
    r = score(model, data, tmp_path / "out", cache=tmp_path / "cache", progress=False, method="knn")
    text = (tmp_path / "out" / "scores.csv").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    assert "caf\\xe9_r0_000.png" in text
    assert (tmp_path / "out" / "run.csv").exists() and r.summary["counts"]


def test_bad_file_with_such_a_name_is_reported_printably(case, tmp_path):
    """A reference image that is both badly named and broken: the error line and bad_files.csv show \\xNN."""
    from fprt.runtime import score

    data, model = case
    folder = data / "train" / "generated" / "gen_t1"
    broken = Path(os.fsdecode(os.fsencode(str(folder)) + b"/h\xe9.png"))
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError) as err:
        score(model, data, tmp_path / "stop", cache=tmp_path / "cache", progress=False, method="knn")
    assert "h\\xe9.png: not an image" in str(err.value)
    score(model, data, tmp_path / "skip", cache=tmp_path / "cache", progress=False, method="knn", on_error="skip")
    report = (tmp_path / "skip" / "bad_files.csv").read_bytes().decode("utf-8")
    assert "h\\xe9.png,\"not an image" in report
