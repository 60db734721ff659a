"""Bad files: each kind is found, the stop policy lists them all in one error, skip writes a report."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from data_testkit import (
    cmyk_jpeg,
    empty_file,
    float_tiff,
    pattern,
    text_as_png,
    truncated_dicom,
    truncated_png,
    write_dicom,
    write_png,
)

from fprt.data import BadFile, BadFilesError, check_files, iter_batches, screen_files, write_bad_file_report
from fprt.data.badfiles import read_bad_file_report
from fprt.errors import DataError
from fprt.preprocess import Preprocess

# name → (writer, words the reason must contain)
BAD_KINDS = {
    "truncated.png": (truncated_png, "truncated or corrupt"),
    "not_an_image.png": (text_as_png, "not an image"),
    "zero.png": (empty_file, "0 bytes"),
    "cmyk.jpg": (cmyk_jpeg, "unsupported image mode 'CMYK'"),
    "float.tif": (float_tiff, "32-bit float image"),
    "truncated.dcm": (truncated_dicom, "DICOM pixel data"),
    "text.dcm": (lambda p: p.write_text("plain text, no DICOM here " * 8) and p, "DICOM"),
}


@pytest.fixture()
def mixed(tmp_path):
    """Good files (PNG, 16-bit PNG, DICOM) interleaved with one bad file of every kind."""
    good = [
        write_png(tmp_path / "good_0.png", pattern(0, (8, 8))),
        write_png(tmp_path / "good_1.png", pattern(1, (8, 8)).astype(np.uint16) * 257),
        write_dicom(tmp_path / "good_2.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8)),
    ]
    paths, bad = [], []
    for k, (name, (make, _)) in enumerate(BAD_KINDS.items()):
        paths.append(good[k % len(good)])
        bad.append(make(tmp_path / name))
        paths.append(bad[-1])
    return paths, bad, good


def test_check_files_finds_every_kind_in_input_order(mixed):
    paths, bad, _ = mixed
    found = check_files(paths, workers=2)
    assert [b.path for b in found] == bad
    for b, (name, (_, words)) in zip(found, BAD_KINDS.items()):
        assert b.path.name == name and words in b.reason, (name, b.reason)
        assert str(b) == f"{b.path}: {b.reason}"
    assert check_files(paths, workers=0) == found  # serial and pooled agree


def test_verify_level_finds_them_too(mixed):
    paths, bad, _ = mixed
    assert [b.path for b in check_files(paths, workers=2, level="verify")] == bad


def test_check_with_a_window_accepts_float_tiff(mixed):
    paths, bad, _ = mixed
    found = {b.path.name for b in check_files(paths, window=(0, 1000))}
    assert "float.tif" not in found and "cmyk.jpg" in found


def test_stop_policy_raises_one_error_listing_every_bad_file(mixed, tmp_path):
    paths, bad, _ = mixed
    report = tmp_path / "out" / "bad_files.csv"
    with pytest.raises(BadFilesError) as err:
        screen_files(paths, "stop", report=report)
    msg = str(err.value)
    assert msg.startswith(f"{len(bad)} bad image file(s) of {len(paths)}; stopped before any model work")
    assert "--on-error skip" in msg
    for b in bad:
        assert str(b) in msg
    assert [b.path for b in err.value.bad] == bad
    assert isinstance(err.value, DataError) and not report.exists()  # nothing written on stop
    copy = pickle.loads(pickle.dumps(err.value))
    assert copy.bad == err.value.bad and str(copy) == msg


def test_skip_policy_returns_good_files_and_writes_the_report(mixed, tmp_path):
    paths, bad, good = mixed
    report = tmp_path / "run" / "bad_files.csv"
    kept, found = screen_files(paths, "skip", report=report, workers=2)
    assert set(kept) == set(good) and all(p not in bad for p in kept)
    assert kept == [p for p in paths if p not in bad]  # input order kept
    assert read_bad_file_report(report) == found and [b.path for b in found] == bad
    assert report.read_text().splitlines()[0] == "path,reason"
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    # then the loader runs on the screened list without meeting a bad file
    batches = list(iter_batches(kept, Preprocess(size=8), batch_size=4, workers=2))
    assert sum(len(b) for b in batches) == len(kept)


def test_clean_input_passes_and_an_empty_report_is_written(tmp_path):
    paths = [write_png(tmp_path / f"ok_{i}.png", pattern(i, (5, 5))) for i in range(4)]
    assert check_files(paths) == []
    kept, bad = screen_files(paths, "stop")
    assert kept == paths and bad == []
    report = tmp_path / "r.csv"
    screen_files(paths, "skip", report=report)
    assert read_bad_file_report(report) == []


def test_report_round_trips_odd_reasons(tmp_path):
    bad = [BadFile(tmp_path / "a,b.png", 'reason with, comma and "quotes"\nand a newline')]
    path = write_bad_file_report(bad, tmp_path / "r.csv")
    assert read_bad_file_report(path) == bad
    (tmp_path / "x.csv").write_text("something else\n")
    with pytest.raises(DataError, match="not a bad-file report"):
        read_bad_file_report(tmp_path / "x.csv")


def test_policy_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        screen_files([], "ignore")
    with pytest.raises(ValueError, match="level"):
        check_files([], level="quick")
