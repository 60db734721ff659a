"""Read + decode + embed on Ray Data (issues 9, 15): the actor pool, using the local run's per-file function,
gives the same content keys and bit-identical embeddings as the local runner, writes the same content-hash
cache a local run reads, and collects a bad image the same way; the (older) file passes done by Ray tasks
give the local functions' results."""

from __future__ import annotations

import numpy as np
import pytest

from ray_testkit import ray_cluster  # noqa: F401  (the session fixture; skips when Ray is missing)
from runtime_testkit import make_conv_onnx, make_subsets_data


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-embed")
    data = make_subsets_data(root / "data", size=48, k=3, n_real=12, n_gen=12, n_test=10)
    paths = sorted(data.rglob("*.png"))
    model, _ = make_conv_onnx(root / "conv.onnx", size=48, channels=16, task="subsets")
    bad = root / "broken.png"
    bad.write_bytes(paths[0].read_bytes()[:200])  # a truncated PNG
    return paths, bad, model


def test_ray_runner_equals_the_local_runner_and_fills_the_cache(ray_cluster, images, tmp_path):
    from fprt.runtime.backends import BackendSpec
    from fprt.runtime.distributed.embed import RayRunner
    from fprt.runtime.pipeline import Embedder, Runner, StageClock

    good, bad, model = images
    paths = good[:37] + [bad] + good[37:]  # the bad file sits inside a batch, mid-run
    local = Runner().embed(paths, Embedder(BackendSpec(str(model)), tmp_path / "local"), batch_size=16)

    runner = RayRunner(cluster=ray_cluster, batches_per_block=2)
    clock = StageClock()
    done = []
    got = runner.embed(paths, Embedder(BackendSpec(str(model)), tmp_path / "ray"), batch_size=16, clock=clock,
                       progress=done.append)
    assert runner.info["embed"]["actors"] == 2 and runner.info["embed"]["block_rows"] == 32
    assert got.keys == local.keys and got.keys[37] is not None  # the same per-file function: same content keys
    assert [b.path for b in got.bad] == [b.path for b in local.bad] == [bad] and "broken.png" not in got.bad[0].reason
    assert set(got.computed) == set(local.computed) and len(got.computed) == len(paths) - 1
    keys = [k for i, k in enumerate(got.keys) if i != 37]
    ray_rows = got.computed_rows()["embedding"][[got.computed[k] for k in keys]]
    local_rows = local.computed_rows()["embedding"][[local.computed[k] for k in keys]]
    np.testing.assert_array_equal(ray_rows, local_rows)  # bit for bit
    assert sum(done) == len(paths) and clock.items["infer"] == len(paths) - 1

    # the workers wrote the cache: a local embedder on that folder finds every good image, and a second
    # Ray pass finds them all cached
    hit, rows = Embedder(BackendSpec(str(model)), tmp_path / "ray").lookup(keys)
    assert hit.all()
    np.testing.assert_array_equal(rows["embedding"], local_rows)
    again = runner.embed(paths, Embedder(BackendSpec(str(model)), tmp_path / "ray"), batch_size=16)
    assert set(again.hits) == set(keys) and not again.computed
