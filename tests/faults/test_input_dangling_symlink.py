"""Fault catalogue — dangling symbolic links and symbolic-link loops among the images.

On the main of 2026-12-04 both were dropped from the listing without a word (``fprt info`` said
"bad files none", ``fprt score`` scored the other images and said nothing). Now they are listed
and are bad files under the stop/skip rule, each with its reason.
"""

from __future__ import annotations

import os

import pytest
from faults_testkit import png, run_cli, small_membership_case

from fprt.errors import DataError


def _links(folder):
    dangling, loop = folder / "zz_dangling.png", folder / "zz_loop.png"
    os.symlink("no_such_target.png", dangling)
    os.symlink(loop.name, loop)
    return dangling, loop


def test_listing_keeps_them_and_the_checks_say_why(tmp_path):
    from fprt.data import check_files, list_images

    good = png(tmp_path / "a.png", 10)
    os.symlink(good.name, tmp_path / "b_ok_link.png")
    dangling, loop = _links(tmp_path)
    os.symlink("no_such_target.txt", tmp_path / "notes.txt")  # not an image name: ignored as before
    listed = list_images(tmp_path)
    assert [p.name for p in listed] == ["a.png", "b_ok_link.png", "zz_dangling.png", "zz_loop.png"]
    bad = {b.path.name: b.reason for b in check_files(listed, workers=1)}
    assert bad == {
        "zz_dangling.png": "dangling symbolic link (its target no_such_target.png does not exist)",
        "zz_loop.png": "symbolic link loop (the link never reaches a file)",
    }


def test_info_lists_them(tmp_path, capsys, monkeypatch):
    data, _ = small_membership_case(tmp_path)
    _links(data / "train" / "real" / "used")
    result = run_cli(["info", data], capsys, monkeypatch)
    assert result.code == 0, result.err
    assert "bad files none" not in result.out
    assert "zz_dangling.png" in result.out and "dangling symbolic link" in result.out
    assert "zz_loop.png" in result.out and "symbolic link loop" in result.out


def test_score_stops_naming_them_or_skips_them_into_the_report(tmp_path):
    from fprt.data.badfiles import read_bad_file_report
    from fprt.runtime import score

    data, model = small_membership_case(tmp_path)
    dangling, loop = _links(data / "test" / "generated")
    with pytest.raises(DataError) as err:
        score(model, data, tmp_path / "stop", cache=tmp_path / "cache", progress=False)
    assert str(dangling) in str(err.value) and str(loop) in str(err.value)
    score(model, data, tmp_path / "skip", cache=tmp_path / "cache", on_error="skip", progress=False)
    reported = {b.path.name: b.reason for b in read_bad_file_report(tmp_path / "skip" / "bad_files.csv")}
    assert set(reported) == {dangling.name, loop.name}
