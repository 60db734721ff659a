"""Fault catalogue — an image file deleted while fprt runs (listed, then gone).

On the main of 2026-12-04 ``fprt score`` died in ``runtime/pipeline.py:_digest`` with a
``FileNotFoundError`` traceback when a listed file was gone by the time it was hashed. Now every
read goes through ``fprt.data.files`` and a vanished file is a bad file saying so.
"""

from __future__ import annotations

import pytest
from faults_testkit import png

from fprt.errors import DataError

REASON = "no such file (deleted or moved while fprt was running?)"


def test_digest_of_a_vanished_file_is_a_data_error_naming_it(tmp_path):
    from fprt.data.files import file_digest

    gone = png(tmp_path / "a.png", 10)
    gone.unlink()
    with pytest.raises(DataError) as err:
        file_digest(gone)
    assert str(err.value) == f"{gone}: {REASON}"


def test_loader_skips_a_file_deleted_after_listing(tmp_path):
    from fprt.data import iter_batches

    paths = [png(tmp_path / f"{i}.png", 10 * i) for i in range(6)]

    def listed_then_deleted():  # the run lists all six; the fourth disappears before it is read
        for p in paths:
            if p.name == "3.png":
                p.unlink()
            yield p

    bad = []
    batches = list(iter_batches(listed_then_deleted(), batch_size=4, workers=1, on_error="skip", on_bad=bad.append))
    assert [p.name for b in batches for p in b.paths] == ["0.png", "1.png", "2.png", "4.png", "5.png"]
    assert [(b.path.name, b.reason) for b in bad] == [("3.png", REASON)]


def test_screening_reports_it_with_its_reason(tmp_path):
    from fprt.data import screen_files

    paths = [png(tmp_path / f"{i}.png", 10 * i) for i in range(3)]
    paths[1].unlink()
    good, bad = screen_files(paths, "skip", workers=1, report=tmp_path / "bad.csv")
    assert good == [paths[0], paths[2]]
    assert [(b.path, b.reason) for b in bad] == [(paths[1], REASON)]


def test_score_treats_a_file_deleted_after_listing_as_a_bad_file(tmp_path, monkeypatch):
    """``fprt score`` lists the data, then the file goes (another process cleans up) before it is read."""
    import fprt.data
    from faults_testkit import small_membership_case

    from fprt.data.badfiles import read_bad_file_report
    from fprt.runtime import score

    data, model = small_membership_case(tmp_path)
    gone = sorted((data / "test" / "generated").iterdir())[4]
    real_discover = fprt.data.discover

    def discover_then_delete(root, *args, **kwargs):
        layout = real_discover(root, *args, **kwargs)
        if gone.exists():
            gone.unlink()
        return layout

    monkeypatch.setattr(fprt.data, "discover", discover_then_delete)
    with pytest.raises(DataError) as err:
        score(model, data, tmp_path / "stop", cache=tmp_path / "cache", progress=False)
    assert f"{gone}: {REASON}" in str(err.value)
    png(gone, 10)  # back for the next listing, which loses it again
    score(model, data, tmp_path / "skip", cache=tmp_path / "cache", on_error="skip", progress=False)
    assert [(b.path.name, b.reason) for b in read_bad_file_report(tmp_path / "skip" / "bad_files.csv")] == [(gone.name, REASON)]
