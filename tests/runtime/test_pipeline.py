"""The overlapping stages: each file read once (hash = cache key, decode from the same bytes), rows in
input order for awkward batch sizes, bad files collected (not raised) so every one is found, copies of
one file computed once, cached files never decoded, errors raised in the caller, the cache written per
batch, the Ray-style Embedder call."""

from __future__ import annotations

import builtins
import hashlib

import numpy as np
import pytest

from fprt.runtime.backends import BackendSpec, load_backend
from fprt.runtime.pipeline import Embedder, StageClock, embed_files, hash_files, load_file
from runtime_testkit import _save_png, make_onnx, reference_embed


@pytest.fixture
def images(tmp_path, rng):
    paths = []
    for i in range(23):
        p = tmp_path / "img" / f"x{i:02d}.png"
        _save_png(p, rng.integers(0, 256, size=(32, 32), dtype=np.uint8))
        paths.append(p)
    return paths


def _rows(got, keys, name="embedding"):
    rows = got.computed_rows()[name]
    return rows[[got.computed[k] for k in keys]]


@pytest.mark.parametrize("batch,workers", [(1, 0), (4, 1), (7, 2), (64, 2)])
def test_rows_in_input_order_each_file_read_once(tmp_path, images, batch, workers, monkeypatch):
    from PIL import Image

    model, _, w = make_onnx(tmp_path / "m.onnx")
    emb = Embedder(load_backend(model), tmp_path / "cache")
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *a, **k):
        if str(file).endswith(".png"):
            opened.append(str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", counting_open)
    clock = StageClock()
    done = []
    got = embed_files(images, emb, batch_size=batch, workers=workers, clock=clock, progress=done.append)
    monkeypatch.setattr(builtins, "open", real_open)
    assert sorted(opened) == sorted(map(str, images))  # one open per file: hash and decode from the same bytes
    assert got.keys == [hashlib.sha256(p.read_bytes()).digest() for p in images] == hash_files(images)
    px = np.stack([np.asarray(Image.open(p)) for p in images])
    np.testing.assert_allclose(_rows(got, got.keys), reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)
    assert list(got.computed) == got.keys  # computed in input order
    assert not got.bad and not got.hits and sum(done) == len(images)
    assert clock.items["infer"] == clock.items["decode"] == clock.items["store"] == clock.items["read"] == len(images)
    # a second pass: every file a hit, none decoded, rows from the cache equal
    clock2 = StageClock()
    again = embed_files(images, Embedder(load_backend(model), tmp_path / "cache"), batch_size=batch, workers=workers,
                        clock=clock2)
    assert set(again.hits) == set(got.keys) and not again.computed and "decode" not in clock2.items
    hit, rows = Embedder(load_backend(model), tmp_path / "cache").lookup(got.keys)
    assert hit.all()
    np.testing.assert_array_equal(rows["embedding"], _rows(got, got.keys))


def test_bad_files_are_collected_and_copies_computed_once(tmp_path, images):
    model, _, _ = make_onnx(tmp_path / "m.onnx")
    bad_first, bad_last = tmp_path / "img" / "a_empty.png", tmp_path / "img" / "z_text.png"
    bad_first.write_bytes(b"")
    bad_last.write_bytes(b"not an image")
    copy = tmp_path / "img" / "copy.png"
    copy.write_bytes(images[3].read_bytes())
    paths = [bad_first, *images[:10], copy, tmp_path / "img" / "missing.png", *images[10:], bad_last]
    got = embed_files(paths, Embedder(load_backend(model), None), batch_size=4, workers=2)
    assert [b.path for b in got.bad] == [bad_first, tmp_path / "img" / "missing.png", bad_last]
    assert "empty file" in got.bad[0].reason and "no such file" in got.bad[1].reason
    assert len(got.computed) == len(images)  # the copy shares its key with images[3]
    assert got.keys[11] == got.keys[4] and got.keys[12] is None


def test_load_file_reads_hashes_and_decodes_once(tmp_path, images):
    from fprt.preprocess import Preprocess

    data = images[0].read_bytes()
    key = hashlib.sha256(data).digest()
    fr = load_file(images[0], Preprocess(size=16), lambda k: False)
    assert fr.key == key and fr.pixels.shape == (16, 16) and not fr.hit and fr.bad is None
    fr = load_file(images[0], Preprocess(size=16), lambda k: k == key)
    assert fr.hit and fr.pixels is None


def test_model_error_is_raised_in_the_caller(tmp_path, images):
    model, _, _ = make_onnx(tmp_path / "m.onnx")
    backend = load_backend(model)

    class Boom(RuntimeError):
        pass

    calls = []

    def infer_prepared(feeds):
        calls.append(len(feeds["image"]))
        if len(calls) == 2:
            raise Boom("model failed on batch 2")
        return {"embedding": np.zeros((len(feeds["image"]), 16), np.float32)}

    backend.infer_prepared = infer_prepared
    emb = Embedder(backend, tmp_path / "cache")
    with pytest.raises(Boom):
        embed_files(images, emb, batch_size=4, workers=1)
    # the first batch was stored before the failure; nothing half-written
    assert emb.cache.stats.shards_written == 1


def test_embedder_as_a_ray_style_callable(tmp_path, images, rng):
    model, _, w = make_onnx(tmp_path / "m.onnx")
    emb = Embedder(BackendSpec(str(model), threads=1), tmp_path / "cache")
    assert emb.spec == BackendSpec(str(model), threads=1)
    px = rng.integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
    keys = np.frombuffer(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(3)), np.uint8).reshape(3, 32)
    out = emb({"pixels": px, "key": keys})
    np.testing.assert_allclose(out["embedding"], reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)
    assert emb.lookup([bytes(k) for k in keys])[0].all()
