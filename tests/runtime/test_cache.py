"""Embedding cache: round trip, torn and corrupt shards ignored (recomputed, never served),
concurrent writers in separate processes, and key = content hash."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os

import numpy as np

from fprt.runtime.cache import EmbeddingCache, default_cache_dir

MODEL = "ab" * 32


def _keys(n, salt=""):
    return [hashlib.sha256(f"{salt}{i}".encode()).digest() for i in range(n)]


def _rows(n, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_round_trip_and_partial_hits(tmp_path):
    cache = EmbeddingCache(tmp_path, MODEL, ("embedding", "logits"))
    keys, emb, logits = _keys(10), _rows(10), _rows(10, 3, seed=1)
    cache.store(keys[:6], {"embedding": emb[:6], "logits": logits[:6]})
    again = EmbeddingCache(tmp_path, MODEL, ("embedding", "logits"))  # a new process would see the same
    mask, rows = again.lookup(keys)
    assert mask.tolist() == [True] * 6 + [False] * 4
    np.testing.assert_array_equal(rows["embedding"], emb[:6])
    np.testing.assert_array_equal(rows["logits"], logits[:6])
    assert again.stats.hits == 6 and again.stats.misses == 4
    # another output name or another model is another namespace
    assert not EmbeddingCache(tmp_path, MODEL, ("other",)).lookup(keys)[0].any()
    assert not EmbeddingCache(tmp_path, "cd" * 32, ("embedding",)).lookup(keys)[0].any()


def test_only_outputs_all_present_count(tmp_path):
    cache = EmbeddingCache(tmp_path, MODEL, ("embedding", "logits"))
    keys = _keys(4)
    cache.spaces["embedding"].put(keys, _rows(4))  # killed between the two outputs' shards
    mask, _ = EmbeddingCache(tmp_path, MODEL, ("embedding", "logits")).lookup(keys)
    assert not mask.any()


def _only_shards(folder):
    return sorted(p for p in folder.iterdir() if p.suffix == ".shard")


def test_corrupt_and_torn_shards_are_ignored(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path, MODEL, ("embedding",))
    keys = _keys(9)
    for i in range(3):
        cache.store(keys[i * 3 : i * 3 + 3], {"embedding": _rows(3, seed=i)})
    shards = _only_shards(tmp_path / MODEL / "embedding")
    assert len(shards) == 3
    data = bytearray(shards[0].read_bytes())
    data[-5] ^= 0xFF  # bit rot in the payload: header and keys still read fine
    shards[0].write_bytes(bytes(data))
    shards[1].write_bytes(shards[1].read_bytes()[:40])  # torn: cut inside the header/keys
    (tmp_path / MODEL / "embedding" / ".x.shard.1234.tmp").write_bytes(b"partial")  # writer killed mid-write
    fresh = EmbeddingCache(tmp_path, MODEL, ("embedding",))
    mask, rows = fresh.lookup(keys)
    assert mask.tolist() == [False] * 6 + [True] * 3
    np.testing.assert_array_equal(rows["embedding"], _rows(3, seed=2))
    assert len(fresh.stats.corrupt_shards) == 2
    assert "ignoring" in caplog.text
    # recomputed rows are written again and then served
    fresh.store(keys[:6], {"embedding": _rows(6, seed=9)})
    mask, rows = EmbeddingCache(tmp_path, MODEL, ("embedding",)).lookup(keys)
    assert mask.all()
    np.testing.assert_array_equal(rows["embedding"][:6], _rows(6, seed=9))


def _writer(root, start, barrier):
    cache = EmbeddingCache(root, MODEL, ("embedding",))
    keys = _keys(200)
    barrier.wait()
    for b in range(start, 200, 10):  # overlapping batches, in a different order per process
        ks = keys[b : b + 10]
        cache.store(ks, {"embedding": np.stack([np.full(8, int.from_bytes(k[:2], "little"), np.float32) for k in ks])})


def test_concurrent_writers(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, barrier)) for s in (0, 0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    folder = tmp_path / MODEL / "embedding"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    cache = EmbeddingCache(tmp_path, MODEL, ("embedding",))
    keys = _keys(200)
    mask, rows = cache.lookup(keys)
    assert mask.all() and not cache.stats.corrupt_shards
    expected = np.array([int.from_bytes(k[:2], "little") for k in keys], np.float32)
    np.testing.assert_array_equal(rows["embedding"][:, 0], expected)


def test_refresh_sees_other_writers(tmp_path):
    a = EmbeddingCache(tmp_path, MODEL, ("embedding",))
    b = EmbeddingCache(tmp_path, MODEL, ("embedding",))
    b.store(_keys(2), {"embedding": _rows(2)})
    assert not a.lookup(_keys(2))[0].any()
    a.refresh()
    assert a.lookup(_keys(2))[0].all()


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
    monkeypatch.delenv("FPRT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "fprt" / "embeddings"
    assert os.fspath(default_cache_dir()).endswith("fprt/embeddings")
