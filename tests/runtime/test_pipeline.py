"""The overlapping stages: rows in input order for awkward batch sizes, errors raised in the
caller, the cache written per batch, the Ray-style Embedder call."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fprt.runtime.backends import BackendSpec, load_backend
from fprt.runtime.pipeline import Embedder, StageClock, hash_files, run_stages
from runtime_testkit import _save_png, make_onnx, reference_embed


@pytest.fixture
def images(tmp_path, rng):
    paths = []
    for i in range(23):
        p = tmp_path / "img" / f"x{i:02d}.png"
        _save_png(p, rng.integers(0, 256, size=(32, 32), dtype=np.uint8))
        paths.append(p)
    return paths


@pytest.mark.parametrize("batch,workers", [(1, 0), (4, 1), (7, 2), (64, 2)])
def test_rows_in_input_order(tmp_path, images, batch, workers):
    from PIL import Image

    model, _, w = make_onnx(tmp_path / "m.onnx")
    emb = Embedder(load_backend(model), tmp_path / "cache")
    keys = hash_files(images, workers=2)
    assert keys == [hashlib.sha256(p.read_bytes()).digest() for p in images]
    clock = StageClock()
    done = []
    res = run_stages(images, keys, emb, batch_size=batch, workers=workers, clock=clock, progress=done.append)
    px = np.stack([np.asarray(Image.open(p)) for p in images])
    np.testing.assert_allclose(res.outputs["embedding"], reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)
    assert res.done.all() and sum(done) == len(images)
    assert clock.items["infer"] == clock.items["decode"] == clock.items["store"] == len(images)
    hit, rows = Embedder(load_backend(model), tmp_path / "cache").lookup(keys)
    assert hit.all()
    np.testing.assert_array_equal(rows["embedding"], res.outputs["embedding"])


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
        run_stages(images, hash_files(images), emb, batch_size=4, workers=1)
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
