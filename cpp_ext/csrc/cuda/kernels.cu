// fprt similarity, CUDA kernels: the tile epilogue (row / column / group candidates, moments), the exact
// re-rank with its certificate, and the exact band pass. The reduction logic itself is the shared
// __host__ __device__ code of fprt_sim/epilogue.h that the CPU extension runs and the CPU tests check.
// No torch headers here: the host driver (similarity_cuda.cpp) owns tensors, cuBLAS and the loops.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "fprt_sim/cuda_launch.h"
#include "fprt_sim/epilogue.h"
#include "fprt_sim/plan.h"

namespace fprt_sim {
namespace cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kThreads = 256;

inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string("fprt CUDA kernel ") + what + ": " + cudaGetErrorString(err));
}

inline unsigned blocks_for(int64_t work, int threads) {
  const int64_t b = (work + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 2147483647 ? 2147483647 : b));
}

// --------------------------------------------------------------------------------------------
template <typename T>
__global__ void norms_kernel(const T* x, int64_t rows, int64_t dim, int metric, double* sq, double* norm, float* aux) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows) return;
  const T* row = x + i * dim;
  const double s = exact_dot(row, row, dim);
  const double nv = sqrt(s);
  sq[i] = s;
  norm[i] = nv;
  aux[i] = metric == kCosine ? static_cast<float>(1.0 / nv) : static_cast<float>(s);
}

__global__ void to_keys_kernel(int metric, float* c, int64_t m, int64_t n, const float* a_aux, const float* b_aux) {
  const int64_t total = m * n;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / n, j = t - r * n;
    float v = c[t];
    if (metric == kCosine) {
      v = __fmul_rn(__fmul_rn(v, a_aux[r]), b_aux[j]);
    } else if (metric == kL2) {
      const float s = __fsub_rn(__fmul_rn(2.0f, v), __fadd_rn(a_aux[r], b_aux[j]));
      v = s < 0.0f ? s : 0.0f;
    }
    c[t] = v;
  }
}

// Warp-parallel insertion into a sorted list of capacity k (shared or global memory): the position is
// fprt_sim::topk_position (entries ranking before the newcomer, counted one slot per lane), then the tail
// shifts up 32 slots at a time from the top. Same result as topk_insert; O(k / 32) per insertion.
__device__ void warp_topk_insert(float* vals, int64_t* idx, int k, float v, int64_t id, int lane) {
  int cnt = 0;
  for (int p = lane; p < k; p += 32) cnt += ranks_before(vals[p], idx[p], v, id) ? 1 : 0;
  for (int o = 16; o > 0; o >>= 1) cnt += __shfl_xor_sync(kFull, cnt, o);
  if (cnt >= k) return;  // uniform across the warp
  for (int top = k - 1; top > cnt; top -= 32) {
    const int p = top - lane;
    const bool act = p > cnt;
    float pv = 0.0f;
    int64_t pi = 0;
    if (act) {
      pv = vals[p - 1];
      pi = idx[p - 1];
    }
    __syncwarp();
    if (act) {
      vals[p] = pv;
      idx[p] = pi;
    }
    __syncwarp();
  }
  if (lane == 0) {
    vals[cnt] = v;
    idx[cnt] = id;
  }
  __syncwarp();
}

// One warp per tile row. The row's candidate list lives in shared memory for the kernel's duration when
// it fits (fprt_sim::plan::row_scan), else it is updated in place in global memory; elements that reach the
// list's threshold are inserted by lane 0 (short lists) or by the whole warp (kr >= 64).
__global__ void row_scan_kernel(const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, float* rv, int64_t* ri,
                                int kr, float* gv, int64_t* gi, int64_t G, int gp, const int64_t* groups, int wpb,
                                bool use_shared, bool warp_insert) {
  extern __shared__ unsigned char smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * wpb + warp;
  if (r >= m) return;  // uniform per warp; the kernel has no block-wide barrier
  const int64_t i = i0 + r;
  int64_t* s_idx = ri + i * kr;
  float* s_val = rv + i * kr;
  if (use_shared) {
    s_idx = reinterpret_cast<int64_t*>(smem) + static_cast<int64_t>(warp) * kr;
    s_val = reinterpret_cast<float*>(reinterpret_cast<int64_t*>(smem) + static_cast<int64_t>(wpb) * kr) +
            static_cast<int64_t>(warp) * kr;
  }
  const float* row = c + r * n;
  if (kr > 0 && use_shared) {
    for (int p = lane; p < kr; p += 32) {
      s_val[p] = rv[i * kr + p];
      s_idx[p] = ri[i * kr + p];
    }
    __syncwarp();
  }
  float thr = kr > 0 ? s_val[kr - 1] : 0.0f;
  for (int64_t base = 0; base < n; base += 32) {
    const int64_t j = base + lane;
    const bool valid = j < n;
    const float s = valid ? row[j] : -INFINITY;
    if (kr > 0) {
      unsigned mask = __ballot_sync(kFull, valid && s >= thr);
      while (mask) {
        const int src = __ffs(mask) - 1;
        mask &= mask - 1;
        const float sv = __shfl_sync(kFull, s, src);
        if (warp_insert) {
          warp_topk_insert(s_val, s_idx, kr, sv, j0 + base + src, lane);
        } else {
          if (lane == 0) topk_insert(s_val, s_idx, kr, sv, j0 + base + src);
          __syncwarp();
        }
        thr = s_val[kr - 1];
      }
    }
    if (G > 0) {
      const long long g = valid ? static_cast<long long>(groups[j0 + j]) : 0;
      const float gthr = valid ? gv[(i * G + g) * gp + gp - 1] : 0.0f;
      unsigned mask = __ballot_sync(kFull, valid && s >= gthr);
      while (mask) {
        const int src = __ffs(mask) - 1;
        mask &= mask - 1;
        const float sv = __shfl_sync(kFull, s, src);
        const long long gg = __shfl_sync(kFull, g, src);
        if (lane == 0) topk_insert(gv + (i * G + gg) * gp, gi + (i * G + gg) * gp, gp, sv, j0 + base + src);
        __syncwarp();
      }
    }
  }
  if (kr > 0 && use_shared) {
    __syncwarp();
    for (int p = lane; p < kr; p += 32) {
      rv[i * kr + p] = s_val[p];
      ri[i * kr + p] = s_idx[p];
    }
  }
}

// One thread per (tile column, slab of rows): reads are coalesced across the warp. Slab 0 continues the
// column's own list; the other slabs fill scratch lists (slabs - 1 x n x kc) that col_merge_kernel merges
// in (the order is total, so the merged list does not depend on the slabbing).
__global__ void col_scan_kernel(const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, float* cv, int64_t* ci,
                                int kc, float* scratch_v, int64_t* scratch_i, int64_t slabs) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t s = blockIdx.y;
  if (j >= n) return;
  const int64_t r0 = s * m / slabs, r1 = (s + 1) * m / slabs;
  float* v = cv + (j0 + j) * kc;
  int64_t* ix = ci + (j0 + j) * kc;
  if (s > 0) {
    v = scratch_v + ((s - 1) * n + j) * kc;
    ix = scratch_i + ((s - 1) * n + j) * kc;
    topk_init(v, ix, kc);
  }
  float thr = v[kc - 1];
  for (int64_t r = r0; r < r1; ++r) {
    const float x = c[r * n + j];
    if (x >= thr && topk_insert(v, ix, kc, x, i0 + r)) thr = v[kc - 1];
  }
}

__global__ void col_merge_kernel(int64_t n, int64_t j0, float* cv, int64_t* ci, int kc, const float* scratch_v,
                                 const int64_t* scratch_i, int64_t slabs) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  for (int64_t s = 1; s < slabs; ++s)
    topk_merge(cv + (j0 + j) * kc, ci + (j0 + j) * kc, scratch_v + ((s - 1) * n + j) * kc,
               scratch_i + ((s - 1) * n + j) * kc, kc);
}

__device__ __forceinline__ float reported(int metric, float key) { return metric == kL2 ? sqrtf(0.0f - key) : key; }

__device__ __forceinline__ Moments load_moments(const double* p) { return Moments{p[0], p[1], p[2], p[3], p[4]}; }
__device__ __forceinline__ void store_moments(double* p, const Moments& mo) {
  p[0] = mo.n;
  p[1] = mo.mean;
  p[2] = mo.m2;
  p[3] = mo.min;
  p[4] = mo.max;
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}
__device__ __forceinline__ float warp_min(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

// Row moments of a tile: one warp per row (two passes: mean, then sum of squared deviations).
__global__ void row_stats_kernel(int metric, const float* c, int64_t m, int64_t n, int64_t i0, double* row_mom) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + warp;
  if (r >= m) return;
  const float* row = c + r * n;
  double sum = 0.0;
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t j = lane; j < n; j += 32) {
    const float x = reported(metric, row[j]);
    sum += static_cast<double>(x);
    lo = fminf(lo, x);
    hi = fmaxf(hi, x);
  }
  sum = warp_sum(sum);
  lo = warp_min(lo);
  hi = warp_max(hi);
  const double mean = sum / static_cast<double>(n);
  double m2 = 0.0;
  for (int64_t j = lane; j < n; j += 32) {
    const double d = static_cast<double>(reported(metric, row[j])) - mean;
    m2 += d * d;
  }
  m2 = warp_sum(m2);
  if (lane == 0) {
    double* p = row_mom + (i0 + r) * 5;
    store_moments(p, moments_merge(load_moments(p), Moments{static_cast<double>(n), mean, m2, lo, hi}));
  }
}

// Column moments of a tile: one thread per (column, slab of rows) into scratch (slabs x n x 5), merged in
// slab order by col_stats_merge_kernel (deterministic).
__global__ void col_stats_kernel(int metric, const float* c, int64_t m, int64_t n, double* scratch, int64_t slabs) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t s = blockIdx.y;
  if (j >= n) return;
  const int64_t r0 = s * m / slabs, r1 = (s + 1) * m / slabs;
  double sum = 0.0;
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t r = r0; r < r1; ++r) {
    const float x = reported(metric, c[r * n + j]);
    sum += static_cast<double>(x);
    lo = fminf(lo, x);
    hi = fmaxf(hi, x);
  }
  const double cnt = static_cast<double>(r1 - r0);
  const double mean = sum / cnt;
  double m2 = 0.0;
  for (int64_t r = r0; r < r1; ++r) {
    const double d = static_cast<double>(reported(metric, c[r * n + j])) - mean;
    m2 += d * d;
  }
  store_moments(scratch + (s * n + j) * 5, Moments{cnt, mean, m2, lo, hi});
}

__global__ void col_stats_merge_kernel(int64_t n, int64_t j0, double* col_mom, const double* scratch, int64_t slabs) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  double* p = col_mom + (j0 + j) * 5;
  Moments acc = load_moments(p);
  for (int64_t s = 0; s < slabs; ++s) acc = moments_merge(acc, load_moments(scratch + (s * n + j) * 5));
  store_moments(p, acc);
}

// Deliberate device fault (__trap) for the fault-reporting test (FPRT_CUDA_FAULT_INJECT).
__global__ void fault_kernel() { __trap(); }

__global__ void init_lists_kernel(float* v, int64_t* ix, int64_t count) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= count) return;
  v[t] = -INFINITY;
  ix[t] = kNoIndex;
}

__global__ void init_moments_kernel(double* mom, int64_t rows) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= rows) return;
  store_moments(mom + t * 5, moments_empty());
}

// Exact keys of candidate slots (one thread per slot) whose database row lies in the rows [b_off, b_off + nb)
// held at b_rows: called once with the whole side b, or once per streamed chunk.
template <typename T>
__global__ void candidate_keys_kernel(int metric, const T* a, const double* a_norm, const T* b_rows, int64_t b_off,
                                      int64_t nb, const double* b_norm, int64_t dim, int64_t nslots, int per_row, int cap,
                                      const int64_t* cand_i, double* key) {
  const int64_t slot = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (slot >= nslots) return;
  const int64_t j = cand_i[slot];
  if (j == kNoIndex || j < b_off || j >= b_off + nb) return;
  const int64_t arow = slot / cap / per_row;
  key[slot] = exact_key(metric, a + arow * dim, b_rows + (j - b_off) * dim, dim, a_norm[arow], b_norm[j]);
}

// One thread per candidate list: sort by exact key, certificate (fprt_sim::finalize_list, as on the CPU).
__global__ void finalize_keys_kernel(int metric, const double* a_norm, const double* a_sq, int64_t dim, int64_t nlists,
                                     int per_row, int cap, int k, const float* cand_v, const int64_t* cand_i, double* key,
                                     double factor, double b_max, double b_min, float* out_v, int64_t* out_i,
                                     uint8_t* failed, double* thr, float* s_rv, int64_t* s_id) {
  const int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (l >= nlists) return;
  const int64_t arow = l / per_row;
  const double delta = error_bound(metric, factor, dim, a_norm[arow], a_sq[arow], b_max, b_min);
  double band;
  const bool ok = finalize_list(metric, cand_v + l * cap, cand_i + l * cap, cap, k, delta, key + l * cap, s_rv + l * cap,
                                s_id + l * cap, out_v + l * k, out_i + l * k, &band);
  failed[l] = ok ? 0 : 1;
  thr[l] = band;
}

// One warp per gathered row: elements at or above a threshold get their exact key (by the lane holding
// them) and are inserted by lane 0.
template <typename T>
__global__ void band_kernel(int metric, const float* c, int64_t m, int64_t n, int64_t f0, int64_t j0, const T* a_g,
                            const double* a_norm_g, const T* b_chunk, int64_t b_off, const double* b_norm, int64_t dim,
                            const double* thr, int k, float* out_rv, int64_t* out_id, const int64_t* groups, int64_t G,
                            const double* gthr, float* gout_rv, int64_t* gout_id) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + warp;
  if (r >= m) return;
  const int64_t f = f0 + r;
  const T* arow = a_g + f * dim;
  const double t_row = k > 0 ? thr[f] : pos_inf_d();
  const float* row = c + r * n;
  for (int64_t base = 0; base < n; base += 32) {
    const int64_t j = base + lane;
    const bool valid = j < n;
    const int64_t jj = j0 + j;
    const long long g = (valid && G > 0) ? static_cast<long long>(groups[jj]) : 0;
    const double s = valid ? static_cast<double>(row[j]) : -pos_inf_d();
    const int in_row = valid && s >= t_row;
    const int in_grp = valid && G > 0 && s >= gthr[f * G + g];
    float v = 0.0f;
    if (in_row || in_grp) {
      const double key = exact_key(metric, arow, b_chunk + (jj - b_off) * dim, dim, a_norm_g[f], b_norm[jj]);
      v = rank_value(metric, key);
    }
    unsigned mask = __ballot_sync(kFull, in_row || in_grp);
    while (mask) {
      const int src = __ffs(mask) - 1;
      mask &= mask - 1;
      const float sv = __shfl_sync(kFull, v, src);
      const int ir = __shfl_sync(kFull, in_row, src);
      const int ig = __shfl_sync(kFull, in_grp, src);
      const long long gg = __shfl_sync(kFull, g, src);
      if (lane == 0) {
        if (ir) topk_insert(out_rv + f * k, out_id + f * k, k, sv, j0 + base + src);
        if (ig) topk_insert(gout_rv + f * G + gg, gout_id + f * G + gg, 1, sv, j0 + base + src);
      }
      __syncwarp();
    }
  }
}

__global__ void band_output_kernel(int metric, float* rv, int64_t* id, int64_t count) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= count) return;
  rv[t] = output_value(metric, rv[t]);
  if (id[t] == kNoIndex) id[t] = -1;
}

template <typename F>
void dispatch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat:
      f(static_cast<const float*>(nullptr));
      break;
    case DType::kHalf:
      f(static_cast<const __half*>(nullptr));
      break;
    case DType::kBFloat16:
      f(static_cast<const __nv_bfloat16*>(nullptr));
      break;
  }
}

}  // namespace

void launch_norms(DType t, const void* x, int64_t rows, int64_t dim, int metric, double* sq, double* norm, float* aux,
                  cudaStream_t stream) {
  dispatch(t, [&](auto tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    norms_kernel<T><<<blocks_for(rows, kThreads), kThreads, 0, stream>>>(static_cast<const T*>(x), rows, dim, metric, sq,
                                                                          norm, aux);
  });
  check_launch("norms");
}

void launch_to_keys(int metric, float* c, int64_t m, int64_t n, const float* a_aux, const float* b_aux,
                    cudaStream_t stream) {
  if (metric == kInnerProduct) return;
  const int64_t total = m * n;
  unsigned blocks = blocks_for(total, kThreads);
  if (blocks > 65535u * 8u) blocks = 65535u * 8u;
  to_keys_kernel<<<blocks, kThreads, 0, stream>>>(metric, c, m, n, a_aux, b_aux);
  check_launch("to_keys");
}

void launch_row_scan(const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, float* rv, int64_t* ri, int kr,
                     float* gv, int64_t* gi, int64_t G, int gp, const int64_t* groups, int64_t smem_limit,
                     cudaStream_t stream) {
  const plan::RowScan p = plan::row_scan(kr, smem_limit);
  const int wpb = p.warps_per_block;
  row_scan_kernel<<<blocks_for(m, wpb), wpb * 32, static_cast<size_t>(p.smem_bytes), stream>>>(
      c, m, n, i0, j0, rv, ri, kr, gv, gi, G, gp, groups, wpb, p.shared && kr > 0, p.warp_insert);
  check_launch("row_scan");
}

static int64_t slabs_for(int64_t slabs, int64_t m) { return std::max<int64_t>(1, std::min<int64_t>(slabs, m / 64)); }

void launch_col_scan(const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, float* cv, int64_t* ci, int kc,
                     float* scratch_v, int64_t* scratch_i, int64_t slabs, cudaStream_t stream) {
  const int64_t s = slabs_for(slabs, m);
  const dim3 grid(blocks_for(n, kThreads), static_cast<unsigned>(s));
  col_scan_kernel<<<grid, kThreads, 0, stream>>>(c, m, n, i0, j0, cv, ci, kc, scratch_v, scratch_i, s);
  check_launch("col_scan");
  if (s > 1) {
    col_merge_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(n, j0, cv, ci, kc, scratch_v, scratch_i, s);
    check_launch("col_merge");
  }
}

void launch_tile_stats(int metric, const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, double* row_mom,
                       double* col_mom, double* scratch, int64_t slabs, cudaStream_t stream) {
  row_stats_kernel<<<blocks_for(m, kThreads / 32), kThreads, 0, stream>>>(metric, c, m, n, i0, row_mom);
  check_launch("row_stats");
  if (col_mom != nullptr) {
    const int64_t s = slabs_for(slabs, m);
    const dim3 grid(blocks_for(n, kThreads), static_cast<unsigned>(s));
    col_stats_kernel<<<grid, kThreads, 0, stream>>>(metric, c, m, n, scratch, s);
    check_launch("col_stats");
    col_stats_merge_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(n, j0, col_mom, scratch, s);
    check_launch("col_stats_merge");
  }
}

void launch_fault(cudaStream_t stream) {
  fault_kernel<<<1, 1, 0, stream>>>();
  check_launch("fault");
}

void launch_init_lists(float* v, int64_t* ix, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  init_lists_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(v, ix, count);
  check_launch("init_lists");
}

void launch_init_moments(double* mom, int64_t rows, cudaStream_t stream) {
  if (rows == 0) return;
  init_moments_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream>>>(mom, rows);
  check_launch("init_moments");
}

void launch_candidate_keys(DType t, int metric, const void* a, const double* a_norm, const void* b_rows, int64_t b_off,
                           int64_t nb, const double* b_norm, int64_t dim, int64_t nlists, int per_row, int cap,
                           const int64_t* cand_i, double* key, cudaStream_t stream) {
  const int64_t nslots = nlists * cap;
  if (nslots == 0) return;
  dispatch(t, [&](auto tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    candidate_keys_kernel<T><<<blocks_for(nslots, 128), 128, 0, stream>>>(
        metric, static_cast<const T*>(a), a_norm, static_cast<const T*>(b_rows), b_off, nb, b_norm, dim, nslots, per_row,
        cap, cand_i, key);
  });
  check_launch("candidate_keys");
}

void launch_finalize_keys(int metric, const double* a_norm, const double* a_sq, int64_t dim, int64_t nlists, int per_row,
                          int cap, int k, const float* cand_v, const int64_t* cand_i, double* key, double factor,
                          double b_max, double b_min, float* out_v, int64_t* out_i, uint8_t* failed, double* thr,
                          float* scratch_rv, int64_t* scratch_id, cudaStream_t stream) {
  if (nlists == 0) return;
  finalize_keys_kernel<<<blocks_for(nlists, 128), 128, 0, stream>>>(metric, a_norm, a_sq, dim, nlists, per_row, cap, k,
                                                                     cand_v, cand_i, key, factor, b_max, b_min, out_v,
                                                                     out_i, failed, thr, scratch_rv, scratch_id);
  check_launch("finalize");
}

void launch_band(DType t, int metric, const float* c, int64_t m, int64_t n, int64_t f0, int64_t j0, const void* a_g,
                 const double* a_norm_g, const void* b_chunk, int64_t b_chunk_offset, const double* b_norm, int64_t dim,
                 const double* thr, int k, float* out_rv, int64_t* out_id, const int64_t* groups, int64_t G,
                 const double* gthr, float* gout_rv, int64_t* gout_id, cudaStream_t stream) {
  dispatch(t, [&](auto tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    band_kernel<T><<<blocks_for(m, kThreads / 32), kThreads, 0, stream>>>(
        metric, c, m, n, f0, j0, static_cast<const T*>(a_g), a_norm_g, static_cast<const T*>(b_chunk), b_chunk_offset,
        b_norm, dim, thr, k, out_rv, out_id, groups, G, gthr, gout_rv, gout_id);
  });
  check_launch("band");
}

void launch_band_output(int metric, float* rv, int64_t* id, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  band_output_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(metric, rv, id, count);
  check_launch("band_output");
}

}  // namespace cuda
}  // namespace fprt_sim
