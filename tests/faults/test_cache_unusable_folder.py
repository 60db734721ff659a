"""Cache faults (issue 13): an embedding cache that cannot be used — FPRT_CACHE_DIR pointing at a file, a
read-only cache folder, a disk that fills up mid-run — gives one warning and a run without the cache, with
the same outputs. On main (fe3ab48) each of these ended in a traceback (FileExistsError /
NotADirectoryError / PermissionError / OSError ENOSPC) after or before the model work."""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path

import pytest

from fprt.runtime import score
sys.path.insert(0, str(Path(__file__).resolve().parent))  # works with or without tests/faults/__init__.py
from pipeline_testkit import membership_case  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache-faults")
    data, model = membership_case(root, n_real=8, n_gen=12)
    reference = score(model, data, root / "reference", use_cache=False, progress=False)
    return data, model, reference.run_csv.read_bytes()


@pytest.mark.parametrize("kind", ["env_points_at_a_file", "read_only_folder"])
def test_cache_folder_unusable_warns_and_runs_without_cache(case, tmp_path, monkeypatch, caplog, kind):
    data, model, expected = case
    if kind == "env_points_at_a_file":
        target = tmp_path / "cache-file"
        target.write_text("not a folder")
        monkeypatch.setenv("FPRT_CACHE_DIR", str(target))
        kw = {}
    else:
        kw = {"cache": Path("/sys/fprt-test-cache")}  # /sys refuses writes even to root
    with caplog.at_level(logging.WARNING, logger="fprt"):
        r = score(model, data, tmp_path / "out", progress=False, **kw)
    assert "cannot be used" in caplog.text and "without a cache" in caplog.text
    assert r.summary["cache"]["dir"] is None and r.summary["counts"]["computed"] == r.summary["counts"]["unique_files"]
    assert r.run_csv.read_bytes() == expected


def test_cache_disk_full_mid_run_warns_and_finishes(case, tmp_path, monkeypatch, caplog):
    import fprt.runtime.cache as cache_mod

    data, model, expected = case
    calls = []

    def full(path, data_):
        calls.append(path)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data_)

    real = cache_mod.atomic_write_bytes
    monkeypatch.setattr(cache_mod, "atomic_write_bytes", full)
    with caplog.at_level(logging.WARNING, logger="fprt"):
        r = score(model, data, tmp_path / "out", cache=tmp_path / "cache", batch_size=4, progress=False)
    assert "No space left on device" in caplog.text and "without the cache" in caplog.text
    assert len(calls) == 2  # the cache was dropped after the first failure
    assert r.run_csv.read_bytes() == expected
