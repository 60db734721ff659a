"""Decode + embed on Ray Data (issue 9): the actor pool gives bit-identical embeddings to the local stages,
writes the same content-hash cache a local run reads, and treats a bad image by the same rule; the driver's
file passes (content hash, screening) done by Ray tasks give the local functions' results."""

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


def test_ray_embed_stage_equals_the_local_stages_and_fills_the_cache(ray_cluster, images, tmp_path):
    from fprt.data import BadFilesError
    from fprt.runtime.backends import BackendSpec
    from fprt.runtime.distributed.embed import RayEmbedStage
    from fprt.runtime.pipeline import Embedder, StageClock, hash_files, run_stages

    good, bad, model = images
    paths = good[:37] + [bad] + good[37:]  # the bad file sits inside a batch, mid-run
    keys = hash_files(paths)
    local = run_stages(paths, keys, Embedder(BackendSpec(str(model)), tmp_path / "local"), batch_size=16,
                       on_error="skip")

    stage = RayEmbedStage(cluster=ray_cluster, batches_per_block=2)
    clock = StageClock()
    done = []
    got = stage(paths, keys, Embedder(BackendSpec(str(model)), tmp_path / "ray"), batch_size=16, on_error="skip",
                clock=clock, progress=done.append)
    assert stage.info["actors"] == 2 and stage.info["block_rows"] == 32
    np.testing.assert_array_equal(got.done, local.done)
    assert not got.done[37] and [b.path for b in got.bad] == [bad] and "broken.png" not in got.bad[0].reason
    np.testing.assert_array_equal(got.outputs["embedding"], local.outputs["embedding"])  # bit for bit
    assert sum(done) == len(paths) and clock.items["infer"] == len(paths) - 1

    # the workers wrote the cache: a local embedder on that folder finds every good image
    hit, rows = Embedder(BackendSpec(str(model)), tmp_path / "ray").lookup([k for k, d in zip(keys, got.done) if d])
    assert hit.all()
    np.testing.assert_array_equal(rows["embedding"], local.outputs["embedding"][got.done])

    # on_error="stop": the bad file is named and the run stops
    with pytest.raises(BadFilesError, match="broken.png"):
        stage(paths, keys, Embedder(BackendSpec(str(model)), tmp_path / "ray2"), batch_size=16, on_error="stop")


def test_ray_file_pass_equals_the_local_hash_and_screen(ray_cluster, images, tmp_path):
    from fprt.data import BadFilesError, screen_files
    from fprt.runtime.distributed.files import RayFilePass
    from fprt.runtime.pipeline import hash_files

    good, bad, _ = images
    paths = good[:20] + [bad] + good[20:]
    files = RayFilePass(block_rows=16)
    assert files.hash_files(paths) == hash_files(paths)
    for level in ("verify", "decode"):
        kept, found = files.screen_files(paths, "skip", level=level, report=tmp_path / f"bad-{level}.csv")
        ref_kept, ref_found = screen_files(paths, "skip", level=level)
        assert kept == ref_kept and found == ref_found and [b.path for b in found] == [bad]
        assert "broken.png" in (tmp_path / f"bad-{level}.csv").read_text()
    with pytest.raises(BadFilesError, match="broken.png") as err:
        files.screen_files(paths, "stop", level="verify")
    assert err.value.total == len(paths)
