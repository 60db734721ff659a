"""The CUDA similarity extension (issue 6). The kernels run only where a GPU is present; without one these
tests are skipped with the reason printed, except the build check, which runs wherever the module was built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fprt.runtime import extension_loader
from fprt.runtime import similarity as sim

from similarity_testkit import clustered_data, exact_rank_values, exact_topk, random_data, to_output

NO_GPU = "no CUDA GPU visible to torch: the CUDA kernels cannot run here (they are compiled, not executed)"
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
FIELDS = ["row_values", "row_indices", "col_values", "col_indices", "group_best", "group_arg"]


def test_cuda_module_was_built_for_this_torch():
    try:
        import fprt._similarity_cuda as mod
    except ImportError as exc:
        pytest.skip(f"fprt._similarity_cuda was not built (no CUDA toolkit at install time?): {exc}")
    info = dict(mod.build_info())
    assert info["torch_version"] == torch.__version__.split("+")[0]
    assert info["device"] == "cuda"
    if torch.version.cuda:
        assert info["cuda_version"] == torch.version.cuda
    assert extension_loader._validate("cuda", mod) is None


@pytest.fixture(scope="module")
def cuda_ext():
    if not torch.cuda.is_available():
        pytest.skip(NO_GPU)
    loaded = extension_loader.load("cuda")
    assert loaded.module is not None, loaded.detail
    return loaded.module


def run(q, r, metric, device, **kw):
    return sim.reduce(q, r, metric=metric, row_k=6, col_k=4, groups=np.arange(r.shape[0]) % 3, stats=True,
                      device=device, **kw)


def assert_same(a, b, stats_rtol=1e-5):
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)), err_msg=f)
    for which in ("row_stats", "col_stats", "global_stats"):
        x, y = getattr(a, which).numpy(), getattr(b, which).numpy()
        for f in ("count", "mean", "min", "max"):
            np.testing.assert_allclose(getattr(x, f), getattr(y, f), rtol=stats_rtol, atol=1e-9, err_msg=f"{which}.{f}")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_cuda_equals_cpu_extension(cuda_ext, metric, kind):
    q, r = (random_data if kind == "random" else clustered_data)(31, 149, 1501, 33)
    cpu = run(q, r, metric, "cpu", tile=(33, 99))
    for tile in [(32, 33), (99, 32), None]:
        gpu_res = run(q, r, metric, "cuda", tile=tile)
        assert gpu_res.backend == "extension-cuda"
        assert_same(gpu_res, cpu)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_16bit_inputs_give_the_exact_result_of_their_values(cuda_ext, dtype):
    q, r = clustered_data(32, 300, 2000, 64)
    qt, rt = torch.from_numpy(q).to(dtype).cuda(), torch.from_numpy(r).to(dtype).cuda()
    res = sim.reduce(qt, rt, metric="cosine", row_k=10, col_k=5)
    assert res.row_values.is_cuda
    # 16-bit values widen exactly to float32: the exact answer is that of the widened inputs
    q32, r32 = qt.float().cpu().numpy(), rt.float().cpu().numpy()
    rv = exact_rank_values(q32, r32, "cosine")
    ref_v, ref_i = exact_topk(rv, 10)
    np.testing.assert_array_equal(res.row_indices.cpu().numpy(), ref_i)
    np.testing.assert_array_equal(res.row_values.cpu().numpy(), to_output(ref_v, "cosine"))
    ref_cv, ref_ci = exact_topk(rv.T, 5)
    np.testing.assert_array_equal(res.col_indices.cpu().numpy(), ref_ci)


@gpu
@pytest.mark.gpu
def test_cuda_streams_a_host_database_in_chunks(cuda_ext, monkeypatch):
    q, r = clustered_data(33, 149, 1501, 33)
    resident = run(torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda(), "l2", "cuda")
    monkeypatch.setenv("FPRT_CUDA_CHUNK_ROWS", "400")
    streamed = run(torch.from_numpy(q).cuda(), torch.from_numpy(r), "l2", "cuda", tile=(64, 128))
    assert_same(streamed, resident)


@gpu
@pytest.mark.gpu
def test_cuda_uses_the_current_stream(cuda_ext):
    q, r = random_data(34, 500, 3000, 32)
    qt, rt = torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        res = sim.reduce(qt, rt, row_k=5)
        values = res.row_values.clone()
    side.synchronize()
    ref = sim.reduce(q, r, row_k=5)
    np.testing.assert_array_equal(values.cpu().numpy(), ref.row_values)


@gpu
@pytest.mark.gpu
def test_cuda_fallback_on_gpu_equals_extension(cuda_ext):
    q, r = clustered_data(35, 149, 1501, 33)
    ext = run(torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda(), "cosine", "cuda")
    fb = run(torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda(), "cosine", "cuda", backend="torch")
    assert fb.backend == "torch-cuda"
    assert_same(ext, fb)
