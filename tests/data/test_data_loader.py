"""iter_batches(): order, ids, the last partial batch, bounded read-ahead, pools, bad files, progress."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from data_testkit import empty_file, pattern, text_as_png, truncated_png, write_png

from fprt.data import BadFile, BadFilesError, Batch, decode_image, iter_batches
from fprt.errors import DataError
from fprt.preprocess import Preprocess


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """53 PNGs of varying sizes whose content depends on their index; names sort in index order."""
    folder = tmp_path_factory.mktemp("loader")
    return [write_png(folder / f"im_{i:03d}.png", pattern(i, (10 + i % 7, 12 + i % 5))) for i in range(53)]


def _expected(paths, pre):
    return np.stack([pre.resize_uint8(decode_image(p)) for p in paths])


def test_batches_are_ordered_complete_and_contiguous(images):
    pre = Preprocess(size=16)
    batches = list(iter_batches(images, pre, batch_size=20, workers=2))
    assert [len(b) for b in batches] == [20, 20, 13]  # the last partial batch is yielded
    assert all(isinstance(b, Batch) for b in batches)
    for b in batches:
        assert b.pixels.dtype == np.uint8 and b.pixels.shape[1:] == (16, 16) and b.pixels.flags.c_contiguous
        assert b.ids == [p.stem for p in b.paths]
        assert b.indices.dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b.indices for b in batches]), np.arange(53))
    assert [p for b in batches for p in b.paths] == images
    np.testing.assert_array_equal(np.concatenate([b.pixels for b in batches]), _expected(images, pre))


@pytest.mark.parametrize("batch_size", [1, 7, 53, 64])
def test_thread_pool_equals_serial(images, batch_size):
    pre = Preprocess(size=12, resize="bicubic")
    serial = list(iter_batches(images, pre, batch_size=batch_size, workers=0))
    pooled = list(iter_batches(images, pre, batch_size=batch_size, workers=3, chunk_size=3))
    assert [len(b) for b in serial] == [len(b) for b in pooled]
    assert sum(len(b) for b in serial) == 53 and len(serial) == -(-53 // batch_size)
    for a, b in zip(serial, pooled):
        assert a.ids == b.ids
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.indices, b.indices)


def test_process_pool_equals_serial(images):
    pre = Preprocess(size=16)
    got = np.concatenate([b.pixels for b in iter_batches(images[:24], pre, batch_size=10, workers=2, executor="process")])
    np.testing.assert_array_equal(got, _expected(images[:24], pre))


def test_generator_input_is_read_a_bounded_distance_ahead(images):
    consumed = 0

    def gen():
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield images[i % len(images)]

    batch_size, prefetch, chunk = 16, 32, 4
    it = iter_batches(gen(), Preprocess(size=8), batch_size=batch_size, workers=2, prefetch=prefetch, chunk_size=chunk)
    seen = 0
    for k, batch in enumerate(it):
        seen += len(batch)
        # read-ahead is bounded by the batch being filled + the in-flight window (+ one chunk)
        assert consumed <= seen + prefetch + chunk, (consumed, seen)
        if k == 5:
            break
    it.close()
    assert seen == 6 * batch_size and consumed < 200  # far from the 10,000 the generator could give
    assert not [t for t in threading.enumerate() if t.name.startswith("fprt-decode")]  # pool shut down on close


def test_skip_leaves_bad_files_out_and_reports_them(images, tmp_path):
    bad1 = truncated_png(tmp_path / "bad_trunc.png")
    bad2 = text_as_png(tmp_path / "bad_text.png")
    bad3 = empty_file(tmp_path / "bad_empty.png")
    paths = [images[0], bad1, images[1], images[2], bad2, images[3], bad3]
    reported: list[BadFile] = []
    batches = list(iter_batches(paths, Preprocess(size=8), batch_size=2, workers=2, on_error="skip", on_bad=reported.append))
    assert [b.ids for b in batches] == [["im_000", "im_001"], ["im_002", "im_003"]]
    np.testing.assert_array_equal(np.concatenate([b.indices for b in batches]), [0, 2, 3, 5])
    assert [r.path for r in reported] == [bad1, bad2, bad3]
    assert "truncated" in reported[0].reason and "0 bytes" in reported[2].reason
    assert not reported[0].reason.startswith(str(bad1))  # the reason does not repeat the path


def test_stop_raises_naming_the_file(images, tmp_path):
    bad = truncated_png(tmp_path / "broken.png")
    it = iter_batches([*images[:5], bad, *images[5:10]], Preprocess(size=8), batch_size=2, workers=2)
    first = next(it)
    assert first.ids == ["im_000", "im_001"]
    with pytest.raises(BadFilesError, match=r"broken\.png: cannot decode PNG") as err:
        list(it)
    assert [b.path for b in err.value.bad] == [bad]
    assert isinstance(err.value, DataError)


def test_without_preprocess_sizes_must_agree(images, tmp_path):
    same = [write_png(tmp_path / f"s{i}.png", pattern(i, (6, 5))) for i in range(5)]
    (batch,) = list(iter_batches(same, None, batch_size=8, workers=0))
    assert batch.pixels.shape == (5, 6, 5)
    with pytest.raises(DataError, match="pass a Preprocess"):
        list(iter_batches(images[:4], None, batch_size=4, workers=0))


def test_progress_callback_counts_every_image(images):
    counts: list[int] = []
    list(iter_batches(images, Preprocess(size=8), batch_size=10, workers=2, chunk_size=4, progress=counts.append))
    assert sum(counts) == 53
    list(iter_batches(images, Preprocess(size=8), batch_size=10, workers=2, progress=True, desc="test"))  # tqdm path


def test_argument_errors(images):
    with pytest.raises(ValueError, match="on_error"):
        next(iter_batches(images, Preprocess(size=8), on_error="ignore"))
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(images, Preprocess(size=8), batch_size=0))
    with pytest.raises(TypeError, match="single path"):
        next(iter_batches(str(images[0]), Preprocess(size=8)))
    with pytest.raises(ValueError, match="executor"):
        next(iter_batches(images, Preprocess(size=8), executor="gpu"))
    assert list(iter_batches([], Preprocess(size=8))) == []


def test_window_is_passed_to_the_decoder(tmp_path):
    v16 = np.linspace(0, 4095, 64).astype(np.uint16).reshape(8, 8)
    path = write_png(tmp_path / "ct.png", v16)
    (batch,) = list(iter_batches([path], Preprocess(size=8), workers=1, window=(2048, 4096)))
    np.testing.assert_array_equal(batch.pixels[0], decode_image(path, window=(2048, 4096)))
    assert batch.pixels[0].max() > 200  # the window brightens the 12-bit data; full-range scaling would not
    assert decode_image(path).max() <= 16
