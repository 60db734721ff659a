// fprt._similarity_cuda: the host driver of the CUDA similarity reductions.
//
// Same contract and outputs as the CPU module (csrc/similarity_cpu.cpp): per tile, cuBLAS computes the
// product in fp32 accumulate (tensor cores for fp16/bf16 inputs; reduced-precision reductions and TF32
// disallowed, so the error bound of epilogue.h holds) on the torch current stream and handle, then the
// epilogue kernels (csrc/cuda/kernels.cu, logic from fprt_sim/epilogue.h) fold the tile into the
// reductions, which stay on the device. When the database is a CPU tensor it is streamed to the
// device in chunks through two pinned buffers on a copy stream (upload of chunk c + 1 overlaps the work
// on chunk c). Kernel faults are reported at the stage they happen in (check_stage). NOTE: compiled in
// CI, never run on a GPU so far - see cpp_ext/README.md.
#include <ATen/ATen.h>
#include <torch/csrc/utils/pybind.h>
#include <torch/version.h>

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fprt_sim/cuda_launch.h"
#include "fprt_sim/epilogue.h"
#include "fprt_sim/plan.h"

#ifndef FPRT_SOURCE_HASH
#define FPRT_SOURCE_HASH hunknown
#endif
#define FPRT_STR2(x) #x
#define FPRT_STR(x) FPRT_STR2(x)

namespace py = pybind11;

namespace {

using fprt_sim::Moments;
using fprt_sim::cuda::DType;

// Default tile 2048 x 4096 fp32 = 32 MiB: it stays in L2 (A100 40 MB, H100 50 MB); fprt_sim/plan.h clamps it.
constexpr int64_t kDefaultTileM = fprt_sim::plan::kGpuDefaultTileM;
constexpr int64_t kDefaultTileN = fprt_sim::plan::kGpuDefaultTileN;

// A kernel fault is reported by the next synchronising call, whatever it is. Every stage ends here, so the
// error names the stage it happened in (FPRT_CUDA_FAULT_INJECT=<stage> plants a fault there: tests).
void check_stage(cudaStream_t stream, const char* stage) {
  if (const char* inj = std::getenv("FPRT_CUDA_FAULT_INJECT"); inj != nullptr && std::string(inj) == stage)
    fprt_sim::cuda::launch_fault(stream);
  cudaError_t err = cudaStreamSynchronize(stream);
  if (err == cudaSuccess) err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, "fprt CUDA similarity: a kernel failed during the ", stage, " stage (",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err),
              "). The CUDA context is unusable now: restart the process; CUDA_LAUNCH_BLOCKING=1 names the kernel");
}

// Sets the cuBLAS handle's math mode for our GEMMs and puts the caller's back, checked (restore() throws
// when cuBLAS refuses; the destructor restores on error paths without throwing).
class MathModeGuard {
 public:
  MathModeGuard(cublasHandle_t h, cublasMath_t mode) : h_(h) {
    TORCH_CHECK(cublasGetMathMode(h_, &prev_) == CUBLAS_STATUS_SUCCESS, "fprt CUDA similarity: cublasGetMathMode failed");
    TORCH_CHECK(cublasSetMathMode(h_, mode) == CUBLAS_STATUS_SUCCESS, "fprt CUDA similarity: cublasSetMathMode failed");
    active_ = true;
  }
  void restore() {
    if (!active_) return;
    active_ = false;
    const cublasStatus_t st = cublasSetMathMode(h_, prev_);
    TORCH_CHECK(st == CUBLAS_STATUS_SUCCESS, "fprt CUDA similarity: restoring the cuBLAS math mode failed (status ",
                static_cast<int>(st), "): torch's later matmuls would run in fprt's mode");
  }
  ~MathModeGuard() {
    if (active_) cublasSetMathMode(h_, prev_);
  }
  MathModeGuard(const MathModeGuard&) = delete;
  MathModeGuard& operator=(const MathModeGuard&) = delete;

 private:
  cublasHandle_t h_;
  cublasMath_t prev_ = CUBLAS_DEFAULT_MATH;
  bool active_ = false;
};

DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DType::kFloat;
    case at::kHalf:
      return DType::kHalf;
    case at::kBFloat16:
      return DType::kBFloat16;
    default:
      TORCH_CHECK(false, "fprt CUDA similarity: inputs must be float32, float16 or bfloat16, got ", t.scalar_type());
  }
}

cudaDataType cuda_type(DType t) {
  switch (t) {
    case DType::kHalf:
      return CUDA_R_16F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

// C (m x n row-major, fp32) = A (m x D) . B (n x D)^T on the handle's stream (the torch current stream).
void tile_gemm(cublasHandle_t h, DType t, const void* a, int64_t m, const void* b, int64_t n, int64_t dim, float* c) {
  const float alpha = 1.0f, beta = 0.0f;
  MathModeGuard mode(h, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
  const cudaDataType ty = cuda_type(t);
  // Column-major view: C^T (n x m) = B (D x n)^T . A (D x m).
  const cublasStatus_t st =
      cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m), static_cast<int>(dim), &alpha,
                   b, ty, static_cast<int>(dim), a, ty, static_cast<int>(dim), &beta, c, CUDA_R_32F, static_cast<int>(n),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  mode.restore();
  TORCH_CHECK(st == CUBLAS_STATUS_SUCCESS, "fprt CUDA similarity: cublasGemmEx failed with status ", static_cast<int>(st));
}

const char* row_ptr(const at::Tensor& t, int64_t row) {
  return static_cast<const char*>(t.data_ptr()) + row * t.size(1) * t.element_size();
}

// The database, resident on the device or streamed from host memory chunk by chunk: two pinned host
// buffers and two device buffers; while the compute stream works on one chunk, the next is copied into the
// pinned buffer (on the host) and uploaded on a copy stream into the other device buffer. Events order the
// reuse: a device buffer is overwritten only after the compute stream's work on it (consumed), a pinned
// buffer only after its previous upload (copied). Chunks are requested in increasing order within a pass.
struct Database {
  at::Tensor host;    // CPU tensor when streamed
  at::Tensor device;  // whole database on the device (resident)
  int64_t chunk = 0;  // rows per chunk
  bool streamed = false;
  cudaStream_t compute = nullptr;
  std::optional<c10::cuda::CUDAStream> copy;
  at::Tensor buf[2], pinned[2];
  at::cuda::CUDAEvent copied[2], consumed[2];
  int64_t loaded_c0[2] = {-1, -1}, loaded_n[2] = {0, 0};
  int cur = -1;
  int64_t uploads = 0;

  int64_t row_bytes() const { return host.size(1) * host.element_size(); }

  void stage(int b, int64_t c0, int64_t n) {
    copied[b].synchronize();  // the pinned buffer's previous upload is done
    std::memcpy(pinned[b].data_ptr(), row_ptr(host, c0), static_cast<size_t>(n * row_bytes()));
    consumed[b].block(*copy);  // the compute stream is done with the device buffer
    C10_CUDA_CHECK(cudaMemcpyAsync(buf[b].data_ptr(), pinned[b].data_ptr(), static_cast<size_t>(n * row_bytes()),
                                   cudaMemcpyHostToDevice, copy->stream()));
    copied[b].record(*copy);
    loaded_c0[b] = c0;
    loaded_n[b] = n;
    ++uploads;
  }

  // Device pointer to rows [c0, c0 + n), valid for work enqueued on the compute stream until the next call.
  const void* rows(int64_t c0, int64_t n) {
    if (!streamed) return row_ptr(device, c0);
    if (cur >= 0) consumed[cur].record(c10::cuda::getStreamFromExternal(compute, host_device()));
    int b = -1;
    for (int x = 0; x < 2; ++x)
      if (loaded_c0[x] == c0 && loaded_n[x] >= n) b = x;
    if (b < 0) {
      b = cur < 0 ? 0 : 1 - cur;
      stage(b, c0, n);
    }
    copied[b].block(c10::cuda::getStreamFromExternal(compute, host_device()));
    cur = b;
    const int64_t next = c0 + n, N = host.size(0);
    if (next < N && loaded_c0[1 - b] != next) stage(1 - b, next, std::min(chunk, N - next));  // prefetch
    return buf[b].data_ptr();
  }

  c10::DeviceIndex dev_index = 0;
  c10::DeviceIndex host_device() const { return dev_index; }
};

Database make_database(const at::Tensor& R, const at::Device& dev, int64_t tile_n, cudaStream_t compute) {
  Database db;
  db.compute = compute;
  db.dev_index = dev.index();
  if (R.is_cuda()) {
    db.device = R;
    db.chunk = R.size(0);
    return db;
  }
  size_t free_b = 0, total_b = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  int64_t env_rows = 0;
  if (const char* env = std::getenv("FPRT_CUDA_CHUNK_ROWS")) env_rows = std::max<int64_t>(1, std::atoll(env));  // tests
  db.chunk = fprt_sim::plan::stream_chunk_rows(R.size(0), R.size(1) * R.element_size(), static_cast<int64_t>(free_b),
                                               tile_n, env_rows);
  db.streamed = true;
  db.host = R;
  db.copy = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, dev.index());
  for (int b = 0; b < 2; ++b) {
    db.buf[b] = at::empty({db.chunk, R.size(1)}, R.options().device(dev));
    db.pinned[b] = at::empty({db.chunk, R.size(1)}, R.options().pinned_memory(true));
  }
  return db;
}

at::Tensor moments_host_global(const at::Tensor& row_mom) {
  at::Tensor h = row_mom.cpu();
  const double* p = h.data_ptr<double>();
  Moments g = fprt_sim::moments_empty();
  for (int64_t i = 0; i < h.size(0); ++i) g = fprt_sim::moments_merge(g, Moments{p[i * 5], p[i * 5 + 1], p[i * 5 + 2], p[i * 5 + 3], p[i * 5 + 4]});
  at::Tensor out = at::empty({1, 5}, at::kDouble);
  double* o = out.data_ptr<double>();
  o[0] = g.n;
  o[1] = g.mean;
  o[2] = g.m2;
  o[3] = g.min;
  o[4] = g.max;
  return out;
}

// Exact band pass: gathered rows `a_rows` of side a (device tensor, nf x D) with thresholds against all
// rows of side b. Returns (rv nf x k, id, grv nf x G, gid) as reported values / -1.
struct BandResult {
  at::Tensor rv, id, grv, gid;
};

BandResult band_pass(cublasHandle_t h, cudaStream_t stream, DType t, int metric, const at::Tensor& a_rows,
                     const at::Tensor& a_norm, const at::Tensor& a_aux, Database& b, int64_t b_rows,
                     const at::Tensor& b_norm, const at::Tensor& b_aux, const at::Tensor& thr, int64_t k,
                     const at::Tensor& groups, int64_t G, const at::Tensor& gthr, int64_t tm, int64_t tn) {
  const int64_t nf = a_rows.size(0), dim = a_rows.size(1);
  const auto fopt = a_norm.options().dtype(at::kFloat);
  const auto lopt = a_norm.options().dtype(at::kLong);
  BandResult out;
  out.rv = at::empty({nf, std::max<int64_t>(k, 1)}, fopt);
  out.id = at::empty({nf, std::max<int64_t>(k, 1)}, lopt);
  out.grv = at::empty({nf, std::max<int64_t>(G, 1)}, fopt);
  out.gid = at::empty({nf, std::max<int64_t>(G, 1)}, lopt);
  fprt_sim::cuda::launch_init_lists(out.rv.data_ptr<float>(), out.id.data_ptr<int64_t>(), out.rv.numel(), stream);
  fprt_sim::cuda::launch_init_lists(out.grv.data_ptr<float>(), out.gid.data_ptr<int64_t>(), out.grv.numel(), stream);
  at::Tensor c = at::empty({tm, tn}, fopt);
  for (int64_t c0 = 0; c0 < b_rows; c0 += b.chunk) {
    const int64_t nc = std::min(b.chunk, b_rows - c0);
    const char* bptr = static_cast<const char*>(b.rows(c0, nc));
    const int64_t esz = a_rows.element_size();
    for (int64_t f0 = 0; f0 < nf; f0 += tm) {
      const int64_t mt = std::min(tm, nf - f0);
      for (int64_t j = 0; j < nc; j += tn) {
        const int64_t nt = std::min(tn, nc - j);
        tile_gemm(h, t, row_ptr(a_rows, f0), mt, bptr + j * dim * esz, nt, dim, c.data_ptr<float>());
        fprt_sim::cuda::launch_to_keys(metric, c.data_ptr<float>(), mt, nt, a_aux.data_ptr<float>() + f0,
                                       b_aux.data_ptr<float>() + c0 + j, stream);
        fprt_sim::cuda::launch_band(t, metric, c.data_ptr<float>(), mt, nt, f0, c0 + j, a_rows.data_ptr(),
                                    a_norm.data_ptr<double>(), bptr, c0, b_norm.data_ptr<double>(), dim,
                                    thr.data_ptr<double>(), static_cast<int>(k), out.rv.data_ptr<float>(),
                                    out.id.data_ptr<int64_t>(), G > 0 ? groups.data_ptr<int64_t>() : nullptr, G,
                                    G > 0 ? gthr.data_ptr<double>() : nullptr, out.grv.data_ptr<float>(),
                                    out.gid.data_ptr<int64_t>(), stream);
      }
    }
  }
  fprt_sim::cuda::launch_band_output(metric, out.rv.data_ptr<float>(), out.id.data_ptr<int64_t>(), out.rv.numel(), stream);
  fprt_sim::cuda::launch_band_output(metric, out.grv.data_ptr<float>(), out.gid.data_ptr<int64_t>(), out.grv.numel(), stream);
  return out;
}

std::vector<at::Tensor> reduce(const at::Tensor& Q, const at::Tensor& R, int64_t metric, int64_t row_k, int64_t col_k,
                               const at::Tensor& groups_t, int64_t n_groups, bool stats, int64_t tile_m, int64_t tile_n,
                               int64_t pad, int64_t group_pad) {
  TORCH_CHECK(Q.is_cuda(), "fprt CUDA similarity: Q must be a CUDA tensor");
  TORCH_CHECK(R.is_cuda() ? R.device() == Q.device() : R.is_cpu(), "R must be on Q's device or on the CPU");
  TORCH_CHECK(Q.dim() == 2 && R.dim() == 2 && Q.size(1) == R.size(1), "Q, R: 2-D with the same number of columns");
  TORCH_CHECK(Q.is_contiguous() && R.is_contiguous(), "Q, R must be contiguous");
  TORCH_CHECK(Q.scalar_type() == R.scalar_type(), "Q and R must have the same dtype");
  const c10::cuda::CUDAGuard guard(Q.device());
  const DType t = dtype_of(Q);
  const int m = static_cast<int>(metric);
  const int64_t M = Q.size(0), N = R.size(0), D = Q.size(1);
  TORCH_CHECK(M > 0 && N > 0 && D > 0, "empty input");
  TORCH_CHECK(row_k >= 0 && row_k <= N && col_k >= 0 && col_k <= M, "k out of range");
  const int64_t G = n_groups;
  const fprt_sim::plan::Tiles tiles = fprt_sim::plan::gpu_tiles(M, N, tile_m, tile_n);
  const int64_t tm = tiles.tm, tn = tiles.tn;
  const int kr = row_k > 0 ? static_cast<int>(row_k + pad) : 0;
  const int kc = col_k > 0 ? static_cast<int>(col_k + pad) : 0;
  const int gp = G > 0 ? static_cast<int>(1 + group_pad) : 0;

  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  cublasHandle_t handle = at::cuda::getCurrentCUDABlasHandle();
  const cudaDeviceProp* props = at::cuda::getCurrentDeviceProperties();
  const int64_t smem_limit = static_cast<int64_t>(props->sharedMemPerBlock);
  const int64_t slabs = fprt_sim::plan::col_slabs(tm, tn, props->multiProcessorCount);
  const auto dev = Q.device();
  const auto fopt = at::TensorOptions().device(dev).dtype(at::kFloat);
  const auto dopt = at::TensorOptions().device(dev).dtype(at::kDouble);
  const auto lopt = at::TensorOptions().device(dev).dtype(at::kLong);
  const auto bopt = at::TensorOptions().device(dev).dtype(at::kByte);

  at::Tensor groups;
  if (G > 0) groups = groups_t.to(dev, at::kLong).contiguous();

  // Norms (exact) and per-row scaling of the approx keys.
  at::Tensor q_sq = at::empty({M}, dopt), q_norm = at::empty({M}, dopt), q_aux = at::empty({M}, fopt);
  at::Tensor r_sq = at::empty({N}, dopt), r_norm = at::empty({N}, dopt), r_aux = at::empty({N}, fopt);
  fprt_sim::cuda::launch_norms(t, Q.data_ptr(), M, D, m, q_sq.data_ptr<double>(), q_norm.data_ptr<double>(),
                               q_aux.data_ptr<float>(), stream);
  Database db = make_database(R, dev, tn, stream);
  const int64_t esz = Q.element_size();
  // Tensor cores accumulate by truncating blocks (fprt_sim::delta_factor): the bound holds for them and for
  // fp32 SIMT GEMMs alike. u_in = 0: TF32 is off and 16-bit inputs are the values the exact keys use.
  const double factor = fprt_sim::delta_factor(D, 0.0, fprt_sim::kTruncatingBlocks);
  check_stage(stream, "norms");
  const double q_max = q_norm.max().item<double>(), q_min = q_norm.min().item<double>();

  // Reduction state (on the device).
  at::Tensor rv = at::empty({M, kr}, fopt), ri = at::empty({M, kr}, lopt);
  at::Tensor gv = at::empty({M, G * gp}, fopt), gi = at::empty({M, G * gp}, lopt);
  at::Tensor cv = at::empty({N, kc}, fopt), ci = at::empty({N, kc}, lopt);
  fprt_sim::cuda::launch_init_lists(rv.data_ptr<float>(), ri.data_ptr<int64_t>(), rv.numel(), stream);
  fprt_sim::cuda::launch_init_lists(gv.data_ptr<float>(), gi.data_ptr<int64_t>(), gv.numel(), stream);
  fprt_sim::cuda::launch_init_lists(cv.data_ptr<float>(), ci.data_ptr<int64_t>(), cv.numel(), stream);
  at::Tensor row_mom = at::empty({stats ? M : 0, 5}, dopt), col_mom = at::empty({stats ? N : 0, 5}, dopt);
  if (stats) {
    fprt_sim::cuda::launch_init_moments(row_mom.data_ptr<double>(), M, stream);
    fprt_sim::cuda::launch_init_moments(col_mom.data_ptr<double>(), N, stream);
  }
  // Column slabs' scratch lists and moments (fprt_sim::plan::col_slabs).
  at::Tensor sc_v = at::empty({kc > 0 ? (slabs - 1) * tn * kc : 0}, fopt), sc_i = at::empty({sc_v.numel()}, lopt);
  at::Tensor sc_m = at::empty({stats ? slabs * tn * 5 : 0}, dopt);
  at::Tensor col_vals = at::empty({N, col_k}, fopt), col_idx = at::empty({N, col_k}, lopt);
  at::Tensor col_failed = at::zeros({N}, bopt), col_thr = at::empty({N}, dopt);
  at::Tensor c = at::empty({tm, tn}, fopt);
  int64_t col_rechecks = 0;

  for (int64_t c0 = 0; c0 < N; c0 += db.chunk) {
    const int64_t nc = std::min(db.chunk, N - c0);
    const char* rptr = static_cast<const char*>(db.rows(c0, nc));
    fprt_sim::cuda::launch_norms(t, rptr, nc, D, m, r_sq.data_ptr<double>() + c0, r_norm.data_ptr<double>() + c0,
                                 r_aux.data_ptr<float>() + c0, stream);
    for (int64_t i0 = 0; i0 < M; i0 += tm) {
      const int64_t mt = std::min(tm, M - i0);
      for (int64_t j = 0; j < nc; j += tn) {
        const int64_t nt = std::min(tn, nc - j), j0 = c0 + j;
        float* cp = c.data_ptr<float>();
        tile_gemm(handle, t, row_ptr(Q, i0), mt, rptr + j * D * esz, nt, D, cp);
        fprt_sim::cuda::launch_to_keys(m, cp, mt, nt, q_aux.data_ptr<float>() + i0, r_aux.data_ptr<float>() + j0, stream);
        if (kr > 0 || G > 0)
          fprt_sim::cuda::launch_row_scan(cp, mt, nt, i0, j0, rv.data_ptr<float>(), ri.data_ptr<int64_t>(), kr,
                                          gv.data_ptr<float>(), gi.data_ptr<int64_t>(), G, gp,
                                          G > 0 ? groups.data_ptr<int64_t>() : nullptr, smem_limit, stream);
        if (kc > 0)
          fprt_sim::cuda::launch_col_scan(cp, mt, nt, i0, j0, cv.data_ptr<float>(), ci.data_ptr<int64_t>(), kc,
                                          sc_v.data_ptr<float>(), sc_i.data_ptr<int64_t>(), slabs, stream);
        if (stats)
          fprt_sim::cuda::launch_tile_stats(m, cp, mt, nt, i0, j0, row_mom.data_ptr<double>(), col_mom.data_ptr<double>(),
                                            sc_m.data_ptr<double>(), slabs, stream);
      }
    }
    // Columns of this chunk are complete: re-rank them while their database rows are on the device.
    if (kc > 0) {
      at::Tensor s_rv = at::empty({nc, kc}, fopt), s_id = at::empty({nc, kc}, lopt);
      at::Tensor s_key = at::zeros({nc, kc}, dopt);
      fprt_sim::cuda::launch_candidate_keys(t, m, rptr, r_norm.data_ptr<double>() + c0, Q.data_ptr(), 0, M,
                                            q_norm.data_ptr<double>(), D, nc, 1, kc, ci.data_ptr<int64_t>() + c0 * kc,
                                            s_key.data_ptr<double>(), stream);
      fprt_sim::cuda::launch_finalize_keys(m, r_norm.data_ptr<double>() + c0, r_sq.data_ptr<double>() + c0, D, nc, 1, kc,
                                           static_cast<int>(col_k), cv.data_ptr<float>() + c0 * kc,
                                           ci.data_ptr<int64_t>() + c0 * kc, s_key.data_ptr<double>(), factor, q_max,
                                           q_min, col_vals.data_ptr<float>() + c0 * col_k,
                                           col_idx.data_ptr<int64_t>() + c0 * col_k, col_failed.data_ptr<uint8_t>() + c0,
                                           col_thr.data_ptr<double>() + c0, s_rv.data_ptr<float>(),
                                           s_id.data_ptr<int64_t>(), stream);
      check_stage(stream, "column finalize");
      at::Tensor failed = col_failed.narrow(0, c0, nc).nonzero().flatten();
      const int64_t nf = failed.size(0);
      col_rechecks += nf;
      if (nf > 0) {
        at::Tensor chunk_rows = at::from_blob(const_cast<char*>(rptr), {nc, D}, Q.options());
        at::Tensor a_rows = chunk_rows.index_select(0, failed).contiguous();
        at::Tensor gidx = failed + c0;
        Database qdb;
        qdb.device = Q;
        qdb.chunk = M;
        BandResult band = band_pass(handle, stream, t, m, a_rows, r_norm.index_select(0, gidx), r_aux.index_select(0, gidx),
                                    qdb, M, q_norm, q_aux, col_thr.index_select(0, gidx), col_k, at::Tensor(), 0,
                                    at::Tensor(), tm, tn);
        col_vals.index_copy_(0, gidx, band.rv.narrow(1, 0, col_k));
        col_idx.index_copy_(0, gidx, band.id.narrow(1, 0, col_k));
      }
    }
  }
  check_stage(stream, "main pass");

  // Rows and groups: exact re-rank + certificate, then the band pass for the rest.
  at::Tensor row_vals = at::empty({M, row_k}, fopt), row_idx = at::empty({M, row_k}, lopt);
  at::Tensor grp_best = at::empty({M, G}, fopt), grp_arg = at::empty({M, G}, lopt);
  at::Tensor row_failed = at::zeros({M}, bopt), row_thr = at::full({M}, fprt_sim::pos_inf_d(), dopt);
  at::Tensor grp_failed = at::zeros({M, G}, bopt), grp_thr = at::full({M, G}, fprt_sim::pos_inf_d(), dopt);
  int64_t row_rechecks = 0, group_rechecks = 0;
  if (kr > 0 || G > 0) {
    const double r_max = r_norm.max().item<double>(), r_min = r_norm.min().item<double>();
    // Exact keys of the candidates: against the resident database in one launch, or chunk by chunk while
    // a streamed database passes through the device again (never a gathered copy of every candidate row).
    auto finalize = [&](const at::Tensor& cand_v, const at::Tensor& cand_i, int64_t nlists, int per_row, int cap, int k,
                        at::Tensor& out_v, at::Tensor& out_i, at::Tensor& failed, at::Tensor& thr) {
      at::Tensor s_rv = at::empty({nlists, cap}, fopt), s_id = at::empty({nlists, cap}, lopt);
      at::Tensor s_key = at::zeros({nlists, cap}, dopt);
      for (int64_t c0 = 0; c0 < N; c0 += db.chunk) {
        const int64_t nc = std::min(db.chunk, N - c0);
        fprt_sim::cuda::launch_candidate_keys(t, m, Q.data_ptr(), q_norm.data_ptr<double>(), db.rows(c0, nc), c0, nc,
                                              r_norm.data_ptr<double>(), D, nlists, per_row, cap,
                                              cand_i.data_ptr<int64_t>(), s_key.data_ptr<double>(), stream);
      }
      fprt_sim::cuda::launch_finalize_keys(m, q_norm.data_ptr<double>(), q_sq.data_ptr<double>(), D, nlists, per_row, cap,
                                           k, cand_v.data_ptr<float>(), cand_i.data_ptr<int64_t>(),
                                           s_key.data_ptr<double>(), factor, r_max, r_min, out_v.data_ptr<float>(),
                                           out_i.data_ptr<int64_t>(), failed.data_ptr<uint8_t>(), thr.data_ptr<double>(),
                                           s_rv.data_ptr<float>(), s_id.data_ptr<int64_t>(), stream);
    };
    if (kr > 0) finalize(rv, ri, M, 1, kr, static_cast<int>(row_k), row_vals, row_idx, row_failed, row_thr);
    if (G > 0) finalize(gv, gi, M * G, static_cast<int>(G), gp, 1, grp_best, grp_arg, grp_failed, grp_thr);
    check_stage(stream, "row finalize");
    row_rechecks = row_failed.sum().item<int64_t>();
    group_rechecks = grp_failed.sum().item<int64_t>();
    at::Tensor any = G > 0 ? row_failed.gt(0).logical_or(grp_failed.gt(0).any(1)) : row_failed.gt(0);
    at::Tensor failed = any.nonzero().flatten();
    if (failed.size(0) > 0) {
      at::Tensor a_rows = Q.index_select(0, failed).contiguous();
      BandResult band = band_pass(handle, stream, t, m, a_rows, q_norm.index_select(0, failed), q_aux.index_select(0, failed),
                                  db, N, r_norm, r_aux, row_thr.index_select(0, failed), row_k, groups, G,
                                  G > 0 ? grp_thr.index_select(0, failed).contiguous() : at::Tensor(), tm, tn);
      if (kr > 0) {
        at::Tensor sel = row_failed.index_select(0, failed).gt(0);
        at::Tensor rows = failed.masked_select(sel);
        row_vals.index_copy_(0, rows, band.rv.narrow(1, 0, row_k).index_select(0, sel.nonzero().flatten()));
        row_idx.index_copy_(0, rows, band.id.narrow(1, 0, row_k).index_select(0, sel.nonzero().flatten()));
      }
      if (G > 0) {
        at::Tensor mask = grp_failed.index_select(0, failed).gt(0);
        grp_best.index_copy_(0, failed, at::where(mask, band.grv, grp_best.index_select(0, failed)));
        grp_arg.index_copy_(0, failed, at::where(mask, band.gid, grp_arg.index_select(0, failed)));
      }
    }
    check_stage(stream, "band pass");
  }

  at::Tensor glob = at::empty({0, 5}, dopt);
  if (stats) glob = moments_host_global(row_mom).to(dev);
  if (!stats) {
    row_mom = at::empty({0, 5}, dopt);
    col_mom = at::empty({0, 5}, dopt);
  }
  at::Tensor info = at::empty({4}, at::kLong);
  info[0] = row_rechecks;
  info[1] = col_rechecks;
  info[2] = group_rechecks;
  info[3] = db.uploads;  // chunk uploads of a streamed database (0 when resident)
  return {row_vals, row_idx, col_vals, col_idx, grp_best, grp_arg, row_mom, col_mom, glob, info};
}

py::dict build_info() {
  py::dict d;
  d["torch_version"] = std::string(TORCH_VERSION);
  d["source_hash"] = std::string(FPRT_STR(FPRT_SOURCE_HASH)).substr(1);
  d["device"] = std::string("cuda");
  d["cuda_version"] = std::to_string(CUDART_VERSION / 1000) + "." + std::to_string((CUDART_VERSION % 1000) / 10);
#if defined(FPRT_CUDA_ARCHS)
  d["archs"] = std::string(FPRT_STR(FPRT_CUDA_ARCHS));
#endif
  d["default_tile"] = py::make_tuple(kDefaultTileM, kDefaultTileN);
  d["error_bound"] = std::string("truncating-blocks");
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fprt similarity reductions on CUDA (see fprt.runtime.similarity); compiled, never run on a GPU so far";
  m.def("reduce", &reduce, "one-pass similarity reductions", py::arg("Q"), py::arg("R"), py::arg("metric"),
        py::arg("row_k"), py::arg("col_k"), py::arg("groups"), py::arg("n_groups"), py::arg("stats"),
        py::arg("tile_m"), py::arg("tile_n"), py::arg("pad"), py::arg("group_pad"),
        py::call_guard<py::gil_scoped_release>());
  m.def("build_info", &build_info, "how this module was built");
}
