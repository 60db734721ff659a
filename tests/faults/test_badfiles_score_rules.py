"""Bad-file faults of ``fprt score`` (issues 13, 15):

- stop: bad files planted first, in the middle and last are ALL listed in one error, nothing is written,
  and the good files' embeddings are cached — the rerun after fixing them computes only the fixed files;
- skip, when every image left to compute is bad and the others come from the cache: on main (fe3ab48)
  ``KeyError: 'embedding'``; now a run whose run.csv says it is incomplete;
- an image over fprt's pixel limit that PIL's own guard lets through (between 1× and 2× the limit, like
  the 10000×10000 PNG of issue 13): a bad file at ``verify`` level too (main: passed verify);
- skip with test images left out: ``complete: false`` and the missing ids in summary.json and on the
  console (main: ``validated: true`` and nothing said).
"""

from __future__ import annotations

import json
import numpy as np
import sys
from pathlib import Path

import pytest

from fprt.data import BadFilesError, check_files
from fprt.runtime import score
from fprt.runtime.api import describe_result
sys.path.insert(0, str(Path(__file__).resolve().parent))  # works with or without tests/faults/__init__.py
from pipeline_testkit import membership_case  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def _fresh(tmp_path):
    return membership_case(tmp_path, n_real=8, n_gen=12)


def test_badfiles_stop_lists_first_middle_last_writes_nothing_and_keeps_the_good_embeddings(tmp_path):
    data, model = _fresh(tmp_path)
    files = sorted((data / "test" / "real_unknown").iterdir()) + sorted((data / "test" / "generated").iterdir())
    planted = {files[0]: files[0].read_bytes(), files[len(files) // 2]: files[len(files) // 2].read_bytes(),
               files[-1]: files[-1].read_bytes()}
    for i, p in enumerate(planted):
        p.write_bytes(b"" if i == 0 else b"not an image" if i == 1 else p.read_bytes()[:50])
    cache = tmp_path / "cache"
    with pytest.raises(BadFilesError) as err:
        score(model, data, tmp_path / "out", cache=cache, batch_size=4, progress=False)
    assert [b.path for b in err.value.bad] == [files[0], files[len(files) // 2], files[-1]]
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    for p, content in planted.items():  # fix the files
        p.write_bytes(content)
    r = score(model, data, tmp_path / "out", cache=cache, batch_size=4, progress=False)
    assert r.summary["counts"]["computed"] == 3  # only the fixed files


def test_badfiles_skip_when_every_image_left_to_compute_is_bad(tmp_path, monkeypatch):
    from PIL import Image

    data, model = _fresh(tmp_path)
    cache = tmp_path / "cache"
    score(model, data, tmp_path / "first", cache=cache, progress=False)
    gen = data / "test" / "generated"
    # new files, not cached, all bad — one that passes a header check but not the decode (over the pixel
    # limit, as issue 13's 10000×10000 PNG), one plainly broken
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(gen / "zz_new_big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 48 - 100)
    (gen / "zz_new_broken.png").write_bytes(b"not an image")
    r = score(model, data, tmp_path / "second", cache=cache, on_error="skip", progress=False)
    assert r.summary["counts"]["computed"] == 0 and r.summary["counts"]["bad_files"] == 2
    assert (tmp_path / "second" / "bad_files.csv").read_text().count("zz_new_") == 2


def test_badfiles_over_the_pixel_limit_found_at_verify_level_and_skipped(tmp_path, monkeypatch):
    from PIL import Image

    data, model = _fresh(tmp_path)
    big = data / "test" / "generated" / "zz_big.png"
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 48 - 100)  # over the limit, under PIL's 2× error
    ordinary = sorted((data / "test" / "generated").iterdir())[0]
    assert [b.path for b in check_files([ordinary, big], level="verify")] == [big]
    r = score(model, data, tmp_path / "out", on_error="skip", progress=False)
    assert [b.path for b in r.bad_files] == [big] and "decompression-bomb" in r.bad_files[0].reason


def test_badfiles_skip_leaving_out_test_images_says_the_run_is_incomplete(tmp_path):
    data, model = _fresh(tmp_path)
    reals = sorted((data / "test" / "real_unknown").iterdir())
    reals[2].write_bytes(b"broken")
    r = score(model, data, tmp_path / "out", on_error="skip", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run_csv"]["complete"] is False and summary["run_csv"]["missing_ids"] == [reals[2].stem]
    assert r.complete is False and r.missing_ids == [reals[2].stem]
    assert f"INCOMPLETE: run.csv lacks 1 test image(s) skipped as bad files ({reals[2].stem})" in describe_result(r)
