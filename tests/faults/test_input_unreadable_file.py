"""Fault catalogue — an image file without read permission.

On the main of 2026-12-04 ``fprt score`` died in ``runtime/pipeline.py:_digest`` with a
``PermissionError`` traceback, and the data layer's checks called it an "unreadable image header".
Now it is a bad file ("no read permission") under the stop/skip rule, named in the error or report.
"""

from __future__ import annotations

import pytest
from faults_testkit import make_unreadable, png, run_cli, small_membership_case

from fprt.errors import DataError

REASON = "no read permission (permission denied)"


@pytest.mark.parametrize("level", ["decode", "verify"])
def test_check_files_reports_it_with_its_reason(level, tmp_path, monkeypatch):
    from fprt.data import check_files

    good, locked = png(tmp_path / "a.png", 10), png(tmp_path / "b.png", 20)
    make_unreadable(locked, monkeypatch)
    bad = check_files([good, locked], workers=1, level=level)
    assert [(b.path, b.reason) for b in bad] == [(locked, REASON)]


def test_digest_and_read_raise_data_error_naming_the_file(tmp_path, monkeypatch):
    from fprt.data.files import file_digest, read_file

    locked = make_unreadable(png(tmp_path / "b.png", 20), monkeypatch)
    for fn in (file_digest, read_file):
        with pytest.raises(DataError, match=f"{locked}: no read permission"):
            fn(locked)


def test_info_lists_it_as_a_bad_file(tmp_path, capsys, monkeypatch):
    data, _ = small_membership_case(tmp_path)
    locked = sorted((data / "train" / "generated").iterdir())[2]
    make_unreadable(locked, monkeypatch)
    result = run_cli(["info", data], capsys, monkeypatch)
    assert result.code == 0, result.err
    assert "bad files: 1 of" in result.out and locked.name in result.out and "no read permission" in result.out


def test_score_stops_naming_it_or_skips_it_into_the_report(tmp_path, monkeypatch):
    from fprt.data.badfiles import read_bad_file_report
    from fprt.runtime import score

    data, model = small_membership_case(tmp_path)
    locked = sorted((data / "test" / "real_unknown").iterdir())[3]
    make_unreadable(locked, monkeypatch)
    with pytest.raises(DataError, match="no read permission") as err:
        score(model, data, tmp_path / "stop", cache=tmp_path / "cache", progress=False)
    assert str(locked) in str(err.value)
    r = score(model, data, tmp_path / "skip", cache=tmp_path / "cache", on_error="skip", progress=False)
    assert [(b.path.name, b.reason) for b in read_bad_file_report(tmp_path / "skip" / "bad_files.csv")] == [(locked.name, REASON)]
    assert locked.stem not in (tmp_path / "skip" / "run.csv").read_text()
    assert r.summary["counts"]["bad_files"] == 1
