"""The CUDA similarity extension (issue 6). The kernels run only where a GPU is present; without one these
tests are skipped with the reason printed, except the build check, which runs wherever the module was built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fprt.runtime import extension_loader
from fprt.runtime import similarity as sim

from similarity_testkit import assert_stats_close, clustered_data, exact_rank_values, exact_topk, random_data, stats_atol, to_output

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


def host(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_same(a, b, atol):
    """Top-k, columns and groups bit for bit; statistics within `atol` (stats_atol): they come from the
    float32 GEMM scores, whose summation order differs between MKL and cuBLAS (and between tilings) -
    test_similarity_gpu_logic.py::test_statistics_depend_on_the_gemm_summation_order shows by how much."""
    for f in FIELDS:
        np.testing.assert_array_equal(host(getattr(a, f)), host(getattr(b, f)), err_msg=f)
    for which in ("row_stats", "col_stats", "global_stats"):
        assert_stats_close(getattr(a, which), getattr(b, which), atol)


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
        assert_same(gpu_res, cpu, stats_atol(q, r, metric))


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
    assert_same(streamed, resident, stats_atol(q, r, "l2"))


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
    assert_same(ext, fb, stats_atol(q, r, "cosine"))


# ---------------------------------------------------------------------------------------------- issue 16
@gpu
@pytest.mark.gpu
def test_cuda_row_lists_longer_than_shared_memory(cuda_ext):
    """Finding 3: row_k + pad above 4096 used to raise on the GPU only; lists now live in global memory
    and the warp inserts in parallel."""
    q, r = random_data(41, 8, 6000, 16)
    for k in (100, 4500):
        res = sim.reduce(torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda(), metric="l2", row_k=k)
        ref_v, ref_i = exact_topk(exact_rank_values(q, r, "l2"), k)
        np.testing.assert_array_equal(host(res.row_indices), ref_i)
        np.testing.assert_array_equal(host(res.row_values), to_output(ref_v, "l2"))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_cuda_columns_and_statistics_in_slabs_equal_cpu(cuda_ext, metric):
    """Finding 4: column top-k and column moments from row slabs merged in slab order (default tile)."""
    q, r = clustered_data(42, 3000, 2500, 24)
    kw = dict(metric=metric, col_k=7, stats=True)
    gpu_res = sim.reduce(torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda(), **kw)
    cpu = sim.reduce(q, r, **kw)
    np.testing.assert_array_equal(host(gpu_res.col_indices), cpu.col_indices)
    np.testing.assert_array_equal(host(gpu_res.col_values), cpu.col_values)
    for which in ("row_stats", "col_stats", "global_stats"):
        assert_stats_close(getattr(gpu_res, which), getattr(cpu, which), stats_atol(q, r, metric))


@gpu
@pytest.mark.gpu
def test_cuda_streamed_database_with_groups_and_band_passes(cuda_ext, monkeypatch):
    """Findings 5 and 12: a host database streamed through two pinned buffers; the re-rank reads candidates
    chunk by chunk (groups make almost every database row a candidate)."""
    q, r = clustered_data(43, 200, 3000, 32)
    groups = np.arange(r.shape[0]) % 50
    kw = dict(metric="cosine", row_k=6, col_k=4, groups=groups, stats=True, tile=(64, 256))
    resident = sim.reduce(torch.from_numpy(q).cuda(), torch.from_numpy(r).cuda(), **kw)
    monkeypatch.setenv("FPRT_CUDA_CHUNK_ROWS", "512")
    streamed = sim.reduce(torch.from_numpy(q).cuda(), torch.from_numpy(r), **kw)
    assert_same(streamed, resident, stats_atol(q, r, "cosine"))
    assert_same(streamed, sim.reduce(q, r, **kw), stats_atol(q, r, "cosine"))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_tensor_core_near_ties_are_exact(cuda_ext, dtype):
    """Finding 2 on the hardware: non-negative 16-bit features, D = 2048, near-ties at the k-th place."""
    rng = np.random.default_rng(44)
    q = rng.random((16, 2048), dtype=np.float32)
    r = rng.random((400, 2048), dtype=np.float32)
    r[200:260] = r[10] + np.float32(2.0**-7) * (rng.random((60, 2048), dtype=np.float32) < 0.01)
    qt, rt = torch.from_numpy(q).to(dtype).cuda(), torch.from_numpy(r).to(dtype).cuda()
    q32, r32 = qt.float().cpu().numpy(), rt.float().cpu().numpy()
    for metric in ("ip", "cosine", "l2"):
        res = sim.reduce(qt, rt, metric=metric, row_k=10)
        ref_v, ref_i = exact_topk(exact_rank_values(q32, r32, metric), 10)
        np.testing.assert_array_equal(host(res.row_indices), ref_i)


@gpu
@pytest.mark.gpu
def test_cuda_tiny_rows_and_huge_tiles(cuda_ext):
    """Findings 11 and 14 on the GPU: rows of ~1e-23 stay exact (FTZ included); a 65536^2 tile request for
    a small problem is clamped (it used to allocate 16 GiB)."""
    q, r = random_data(45, 20, 300, 16)
    s = np.float32(2.0**-76)
    res = sim.reduce(torch.from_numpy(q * s).cuda(), torch.from_numpy(r * s).cuda(), row_k=5, tile=65536)
    np.testing.assert_array_equal(host(res.row_indices), exact_topk(exact_rank_values(q, r, "cosine"), 5)[1])
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() < 1 << 30


_FAULT = """
import os, sys, torch
from fprt.runtime import similarity as sim
q = torch.randn(50, 16, device="cuda")
try:
    sim.reduce(q, q, row_k=3, col_k=2)
except RuntimeError as exc:
    print("MESSAGE:", exc)
    sys.exit(3)
"""


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("stage", ["main pass", "row finalize", "column finalize"])
def test_cuda_kernel_faults_name_their_stage(cuda_ext, stage, tmp_path):
    """Finding 13: a device fault (planted with FPRT_CUDA_FAULT_INJECT, in a subprocess: the context dies)
    is reported by the stage it happened in, not by some later unrelated call."""
    import os
    import subprocess
    import sys

    script = tmp_path / "fault.py"
    script.write_text(_FAULT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FPRT_CUDA_FAULT_INJECT": stage})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"a kernel failed during the {stage} stage" in proc.stdout
