// fprt._similarity_cpu: one-pass similarity reductions on the CPU.
//
// Queries Q (M x D) against a database R (N x D), float32, tile by tile: each tile's GEMM runs single-
// threaded in MKL (via at::mm_out) into a thread-local buffer that stays in cache, and the fused epilogue
// (shared with CUDA in fprt_sim/epilogue.h) folds it into row top-k, column top-k, per-group best and
// running moments before the next tile overwrites it. The two cores work on different query blocks
// (at::parallel_for over threads pulling blocks from an atomic counter: one pool, no nesting).
// Candidates are re-ranked exactly in float64 and certified (see epilogue.h); rows/columns/groups
// whose certificate fails are recomputed by an exact band pass, so results are exact and identical
// across tile sizes, thread counts and shards.
#include <ATen/ATen.h>
#include <torch/csrc/utils/pybind.h>
#include <torch/version.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "fprt_sim/epilogue.h"
#include "fprt_sim/plan.h"
#include "fprt_sim/problem.h"

#ifndef FPRT_SOURCE_HASH
#define FPRT_SOURCE_HASH hunknown
#endif
#define FPRT_STR2(x) #x
#define FPRT_STR(x) FPRT_STR2(x)

namespace py = pybind11;

// MKL (statically linked into libtorch_cpu) lets a thread run its BLAS calls single-threaded. Weak:
// absent with other BLAS builds, then the OpenMP nesting rule (sequential inside a parallel region) holds.
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));
namespace {

using fprt_sim::Moments;
using fprt_sim::kNoIndex;
using fprt_sim::kCosine;
using fprt_sim::kInnerProduct;
using fprt_sim::kL2;

// 512 x 512 floats = 1 MiB: the GEMM's output tile is still in L2 when the epilogue reads it (Zen3: 1 MiB
// L2 per core), and 512 query rows amortise MKL's packing of each database tile.
constexpr int64_t kDefaultTileM = 512;
constexpr int64_t kDefaultTileN = 512;
constexpr int64_t kChunk = 16;  // filter width: one vector compare decides whether a chunk needs scalar work

// The hot per-tile code is compiled twice on x86-64 (AVX2 and baseline SSE2) and picked at load time
// (GCC function multiversioning); no FMA in either, so results do not depend on the clone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FPRT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FPRT_CLONES
#endif
#if defined(__GNUC__)
#define FPRT_INLINE inline __attribute__((always_inline))
#else
#define FPRT_INLINE inline
#endif

// Eight floats as one GCC vector (one AVX register, or two SSE registers in the baseline clone).
// Exact keys on the CPU: fprt_sim::exact_dot / exact_sqdist with the four partial sums (lane = d mod 4) held
// in one vector of four doubles - the same operations in the same order, so the same bits as the shared
// definition (and the GPU, and the fallback); in the AVX2 clone one register, in the baseline two.
typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

FPRT_INLINE v4d load4d(const float* p) {
  v4f f;
  __builtin_memcpy(&f, p, sizeof(f));
  return __builtin_convertvector(f, v4d);
}

FPRT_INLINE double exact_dot_cpu(const float* a, const float* b, int64_t dim) {
  v4d acc = {0.0, 0.0, 0.0, 0.0};
  int64_t d = 0;
  for (; d + 4 <= dim; d += 4) acc = acc + load4d(a + d) * load4d(b + d);
  for (int l = 0; d + l < dim; ++l) acc[l] = acc[l] + static_cast<double>(a[d + l]) * static_cast<double>(b[d + l]);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

FPRT_INLINE double exact_sqdist_cpu(const float* a, const float* b, int64_t dim) {
  v4d acc = {0.0, 0.0, 0.0, 0.0};
  int64_t d = 0;
  for (; d + 4 <= dim; d += 4) {
    const v4d e = load4d(a + d) - load4d(b + d);
    acc = acc + e * e;
  }
  for (int l = 0; d + l < dim; ++l) {
    const double e = static_cast<double>(a[d + l]) - static_cast<double>(b[d + l]);
    acc[l] = acc[l] + e * e;
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

FPRT_INLINE double exact_key_cpu(int metric, const float* a, const float* b, int64_t dim, double na, double nb) {
  if (metric == kL2) return -exact_sqdist_cpu(a, b, dim);
  const double dot = exact_dot_cpu(a, b, dim);
  return metric == kCosine ? dot / (na * nb) : dot;
}

// Four exact keys of row `a` at once: four independent dependency chains (each candidate's own operations
// and order are those of exact_key_cpu).
FPRT_INLINE void exact_key4(int metric, const float* a, const float* const* b, int64_t dim, double* out) {
  v4d acc[4] = {{0.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 0.0}};
  int64_t d = 0;
  if (metric == kL2) {
    for (; d + 4 <= dim; d += 4) {
      const v4d x = load4d(a + d);
      for (int c = 0; c < 4; ++c) {
        const v4d e = x - load4d(b[c] + d);
        acc[c] = acc[c] + e * e;
      }
    }
  } else {
    for (; d + 4 <= dim; d += 4) {
      const v4d x = load4d(a + d);
      for (int c = 0; c < 4; ++c) acc[c] = acc[c] + x * load4d(b[c] + d);
    }
  }
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; d + l < dim; ++l) {
      if (metric == kL2) {
        const double e = static_cast<double>(a[d + l]) - static_cast<double>(b[c][d + l]);
        acc[c][l] = acc[c][l] + e * e;
      } else {
        acc[c][l] = acc[c][l] + static_cast<double>(a[d + l]) * static_cast<double>(b[c][d + l]);
      }
    }
    out[c] = (acc[c][0] + acc[c][1]) + (acc[c][2] + acc[c][3]);
  }
}

// Exact keys of one row `a` against the rows idx[0..n) of `b` (the re-rank).
FPRT_CLONES void exact_keys_batch(int metric, const float* a, double a_norm, const float* b, const double* b_norm,
                                  int64_t dim, const int64_t* idx, int n, double* out) {
  int p = 0;
  for (; p + 4 <= n; p += 4) {
    const float* rows[4] = {b + idx[p] * dim, b + idx[p + 1] * dim, b + idx[p + 2] * dim, b + idx[p + 3] * dim};
    exact_key4(metric, a, rows, dim, out + p);
    if (metric == kL2) {
      for (int c = 0; c < 4; ++c) out[p + c] = -out[p + c];
    } else if (metric == kCosine) {
      for (int c = 0; c < 4; ++c) out[p + c] = out[p + c] / (a_norm * b_norm[idx[p + c]]);
    }
  }
  for (; p < n; ++p) out[p] = exact_key_cpu(metric, a, b + idx[p] * dim, dim, a_norm, b_norm[idx[p]]);
}

// Exact keys of pairs (a[ia[t]], b[ib[t]]) with norms computed here (tests, fallback check).
FPRT_CLONES void exact_pairs(int metric, const float* a, const float* b, int64_t dim, const int64_t* ia,
                             const int64_t* ib, int64_t n, double* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* x = a + ia[t] * dim;
    const float* y = b + ib[t] * dim;
    out[t] = exact_key_cpu(metric, x, y, dim, std::sqrt(exact_dot_cpu(x, x, dim)), std::sqrt(exact_dot_cpu(y, y, dim)));
  }
}

// Exact |x_i|^2 of rows [b, e).
FPRT_CLONES void exact_self_batch(const float* x, int64_t dim, int64_t b, int64_t e, double* out) {
  for (int64_t i = b; i < e; ++i) out[i] = exact_dot_cpu(x + i * dim, x + i * dim, dim);
}

// Everything a pass needs about one side (queries or database) of the product.
struct Side {
  const float* x = nullptr;  // rows x D, contiguous
  int64_t rows = 0;
  std::vector<double> sq;    // exact self dot product (|x|^2)
  std::vector<double> norm;  // sqrt(sq)
  std::vector<float> aux;    // cosine: 1/|x| (float); L2: |x|^2 (float); inner product: unused
  double max_norm = 0.0;
  double min_norm = INFINITY;  // smallest row norm (the underflow term of cosine's error bound)
  int64_t first_nonfinite = -1;  // first row with NaN/Inf (|x|^2 is then not finite)
  int64_t first_zero = -1;       // first row of norm < 1e-30 (no direction: cosine undefined)
};

Side make_side(const float* x, int64_t rows, int64_t dim, int metric) {
  Side s;
  s.x = x;
  s.rows = rows;
  s.sq.resize(rows);
  s.norm.resize(rows);
  s.aux.resize(rows);
  at::parallel_for(0, rows, 1024, [&](int64_t b, int64_t e) {
    exact_self_batch(x, dim, b, e, s.sq.data());
    for (int64_t i = b; i < e; ++i) {
      const double sq = s.sq[i];
      s.norm[i] = std::sqrt(sq);
      s.aux[i] = metric == kCosine ? static_cast<float>(1.0 / s.norm[i]) : static_cast<float>(sq);
    }
  });
  for (int64_t i = 0; i < rows; ++i) {
    if (!std::isfinite(s.sq[i])) {
      if (s.first_nonfinite < 0) s.first_nonfinite = i;
      continue;
    }
    if (s.norm[i] < 1e-30 && s.first_zero < 0) s.first_zero = i;
    s.max_norm = std::max(s.max_norm, s.norm[i]);
    s.min_norm = std::min(s.min_norm, s.norm[i]);
  }
  return s;
}

// Error bound of the approx keys of row i of `a` against any row of `b`.
double row_delta(int metric, double factor, int64_t dim, const Side& a, int64_t i, const Side& b) {
  return fprt_sim::error_bound(metric, factor, dim, a.norm[i], a.sq[i], b.max_norm, b.min_norm);
}

// Input rounding of the GEMM when torch is told to run float32 matmuls in lower precision on the CPU.
double gemm_input_rounding() {
  const auto prec = at::globalContext().float32Precision(at::Float32Backend::MKLDNN, at::Float32Op::MATMUL);
  if (prec == at::Float32Precision::BF16) return 1.0 / 256.0;
  if (prec == at::Float32Precision::TF32) return 1.0 / 2048.0;
  return 0.0;
}

// C (m x n, row-major) = A (m x D) . B (n x D)^T, float32, in the calling thread.
void tile_gemm(const float* a, int64_t m, const float* b, int64_t n, int64_t dim, float* c) {
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor ta = at::from_blob(const_cast<float*>(a), {m, dim}, opts);
  at::Tensor tb = at::from_blob(const_cast<float*>(b), {n, dim}, opts);
  at::Tensor tc = at::from_blob(c, {m, n}, opts);
  at::mm_out(tc, ta, tb.t());
}

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

FPRT_INLINE v8f load8(const float* p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

FPRT_INLINE bool any_lanes(v8i m) {
  uint64_t w[4];
  __builtin_memcpy(w, &m, sizeof(w));
  return ((w[0] | w[1]) | (w[2] | w[3])) != 0;
}

// Raw dot products -> approx keys (larger is closer), in place.
FPRT_INLINE void to_keys(int metric, float* c, int64_t m, int64_t n, const float* a_aux, const float* b_aux) {
  if (metric == kCosine) {
    for (int64_t r = 0; r < m; ++r) {
      float* row = c + r * n;
      const float ar = a_aux[r];
      for (int64_t j = 0; j < n; ++j) row[j] = (row[j] * ar) * b_aux[j];
    }
  } else if (metric == kL2) {
    for (int64_t r = 0; r < m; ++r) {
      float* row = c + r * n;
      const float ar = a_aux[r];
      for (int64_t j = 0; j < n; ++j) {
        const float s = 2.0f * row[j] - (ar + b_aux[j]);
        row[j] = s < 0.0f ? s : 0.0f;
      }
    }
  }
}

// Which of s[0..kChunk) reach their threshold? A 16-bit mask; the common all-miss case costs two vector
// compares, an or and a test.
FPRT_INLINE unsigned lane_bits(v8i m) {
  const v8i bits = {1, 2, 4, 8, 16, 32, 64, 128};
  const v8i b = m & bits;
  return static_cast<unsigned>((b[0] | b[1]) | (b[2] | b[3]) | ((b[4] | b[5]) | (b[6] | b[7])));
}
FPRT_INLINE unsigned ge_mask(const float* s, float thr) {
  const v8f t = {thr, thr, thr, thr, thr, thr, thr, thr};
  const v8i m0 = load8(s) >= t, m1 = load8(s + 8) >= t;
  if (!any_lanes(m0 | m1)) return 0;
  return lane_bits(m0) | (lane_bits(m1) << 8);
}
FPRT_INLINE unsigned ge_mask(const float* s, const float* thr) {
  const v8i m0 = load8(s) >= load8(thr), m1 = load8(s + 8) >= load8(thr + 8);
  if (!any_lanes(m0 | m1)) return 0;
  return lane_bits(m0) | (lane_bits(m1) << 8);
}

// Row and column candidates: sorted lists of capacity k (best first), the shared fprt_sim::topk_insert.
// A chunk whose vector compare finds no element at or above the threshold costs two compares; otherwise
// only the hit lanes (bits of the mask) are visited.

// Row candidates: fold one tile row (columns j0..j0+n) into the row's sorted list of capacity k.
FPRT_INLINE void scan_row(const float* s, int64_t n, int64_t j0, float* vals, int64_t* idx, int k) {
  float thr = vals[k - 1];
  int64_t j = 0;
  for (; j + kChunk <= n; j += kChunk) {
    for (unsigned hits = ge_mask(s + j, thr); hits != 0; hits &= hits - 1) {
      const int64_t l = j + __builtin_ctz(hits);
      if (s[l] >= thr && fprt_sim::topk_insert(vals, idx, k, s[l], j0 + l)) thr = vals[k - 1];
    }
  }
  for (; j < n; ++j) {
    if (s[j] >= thr && fprt_sim::topk_insert(vals, idx, k, s[j], j0 + j)) thr = vals[k - 1];
  }
}

// Column candidates: offer query `qi` to each column of the tile row. thr[j] mirrors the list's last value.
FPRT_INLINE void scan_cols(const float* s, int64_t n, int64_t qi, float* vals, int64_t* idx, float* thr, int k) {
  auto offer = [&](int64_t l) {
    if (s[l] >= thr[l] && fprt_sim::topk_insert(vals + l * k, idx + l * k, k, s[l], qi)) thr[l] = vals[l * k + k - 1];
  };
  int64_t j = 0;
  for (; j + kChunk <= n; j += kChunk) {
    for (unsigned hits = ge_mask(s + j, thr + j); hits != 0; hits &= hits - 1) offer(j + __builtin_ctz(hits));
  }
  for (; j < n; ++j) offer(j);
}

// Per-group candidates over the runs of equal group label that overlap the tile.
FPRT_INLINE void scan_groups(const float* s, int64_t n, int64_t j0, const int64_t* run_start, const int64_t* run_group,
                 int64_t first_run, float* gv, int64_t* gi, int cap) {
  const int64_t j1 = j0 + n;
  for (int64_t q = first_run; run_start[q] < j1; ++q) {
    const int64_t a = std::max(run_start[q], j0) - j0;
    const int64_t b = std::min(run_start[q + 1], j1) - j0;
    float* vals = gv + run_group[q] * cap;
    int64_t* idx = gi + run_group[q] * cap;
    float thr = vals[cap - 1];
    int64_t j = a;
    for (; j + kChunk <= b; j += kChunk) {
      for (unsigned hits = ge_mask(s + j, thr); hits != 0; hits &= hits - 1) {
        const int64_t l = j + __builtin_ctz(hits);
        if (s[l] >= thr && fprt_sim::topk_insert(vals, idx, cap, s[l], j0 + l)) thr = vals[cap - 1];
      }
    }
    for (; j < b; ++j) {
      if (s[j] >= thr && fprt_sim::topk_insert(vals, idx, cap, s[j], j0 + j)) thr = vals[cap - 1];
    }
  }
}

// Moments of one tile: per row (merged into row_mom) and per column (merged into col_mom).
// Values: the reported scores (cosine, inner product, or L2 distance = sqrt of the clamped approx).
struct StatScratch {
  std::vector<double> sum, m2;
  std::vector<float> mn, mx;
};

FPRT_INLINE Moments chunk_moments(const float* x, int64_t n) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float lo[8], hi[8];
  for (int l = 0; l < 8; ++l) lo[l] = hi[l] = x[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int l = 0; l < 8; ++l) {
      a[l] += static_cast<double>(x[j + l]);
      lo[l] = x[j + l] < lo[l] ? x[j + l] : lo[l];
      hi[l] = x[j + l] > hi[l] ? x[j + l] : hi[l];
    }
  }
  for (; j < n; ++j) {
    a[0] += static_cast<double>(x[j]);
    lo[0] = x[j] < lo[0] ? x[j] : lo[0];
    hi[0] = x[j] > hi[0] ? x[j] : hi[0];
  }
  const double mean = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) / static_cast<double>(n);
  double b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int l = 0; l < 8; ++l) {
      const double d = static_cast<double>(x[j + l]) - mean;
      b[l] += d * d;
    }
  }
  for (; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - mean;
    b[0] += d * d;
  }
  float mn = lo[0], mx = hi[0];
  for (int l = 1; l < 8; ++l) {
    mn = lo[l] < mn ? lo[l] : mn;
    mx = hi[l] > mx ? hi[l] : mx;
  }
  const double m2 = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  return Moments{static_cast<double>(n), mean, m2, static_cast<double>(mn), static_cast<double>(mx)};
}

FPRT_INLINE void tile_stats(int metric, float* c, int64_t m, int64_t n, Moments* row_mom, Moments* col_mom, StatScratch& sc) {
  if (metric == kL2) {
    for (int64_t x = 0; x < m * n; ++x) c[x] = std::sqrt(0.0f - c[x]);
  }
  for (int64_t r = 0; r < m; ++r) row_mom[r] = fprt_sim::moments_merge(row_mom[r], chunk_moments(c + r * n, n));
  if (col_mom == nullptr) return;
  double* sum = sc.sum.data();
  double* m2 = sc.m2.data();
  float* mn = sc.mn.data();
  float* mx = sc.mx.data();
  for (int64_t j = 0; j < n; ++j) {
    sum[j] = 0.0;
    m2[j] = 0.0;
    mn[j] = c[j];
    mx[j] = c[j];
  }
  for (int64_t r = 0; r < m; ++r) {
    const float* row = c + r * n;
    for (int64_t j = 0; j < n; ++j) {
      sum[j] += static_cast<double>(row[j]);
      mn[j] = row[j] < mn[j] ? row[j] : mn[j];
      mx[j] = row[j] > mx[j] ? row[j] : mx[j];
    }
  }
  const double inv_m = 1.0 / static_cast<double>(m);
  for (int64_t j = 0; j < n; ++j) sum[j] *= inv_m;  // now the mean
  for (int64_t r = 0; r < m; ++r) {
    const float* row = c + r * n;
    for (int64_t j = 0; j < n; ++j) {
      const double d = static_cast<double>(row[j]) - sum[j];
      m2[j] += d * d;
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    col_mom[j] = fprt_sim::moments_merge(
        col_mom[j], Moments{static_cast<double>(m), sum[j], m2[j], static_cast<double>(mn[j]), static_cast<double>(mx[j])});
  }
}

// Everything one tile contributes, with pointers already offset where noted.
struct TileArgs {
  int metric;
  float* c;  // mt x nt raw dot products (becomes approx keys)
  int64_t mt, nt, i0, j0;
  const float* q_aux;  // offset by i0
  const float* r_aux;  // offset by j0
  int kr;              // row lists (M x kr, global)
  float* rv;
  int64_t* ri;
  int kc;  // this thread's column lists (N x kc) and their last values (N), global
  float* cv;
  int64_t* ci;
  float* cthr;
  int64_t G;  // group lists (M x G x gp, global) over the label runs
  int gp;
  float* gv;
  int64_t* gi;
  const int64_t* run_start;
  const int64_t* run_group;
  int64_t first_run;
  Moments* row_mom;  // offset by i0; null: no statistics
  Moments* col_mom;  // offset by j0
  StatScratch* scratch;
};

// The fused epilogue of one tile (hot: compiled for AVX2 and for the baseline).
// Row by row: the row's keys are made in place and scanned while the row (2 KiB) is in L1, instead of a
// keys pass over the whole tile (1 MiB, L2) followed by a scan pass (one L2 round trip less per element).
FPRT_CLONES void process_tile(const TileArgs& a) {
  for (int64_t rr = 0; rr < a.mt; ++rr) {
    const int64_t i = a.i0 + rr;
    float* s = a.c + rr * a.nt;
    to_keys(a.metric, s, 1, a.nt, a.q_aux + rr, a.r_aux);
    if (a.kr) scan_row(s, a.nt, a.j0, a.rv + i * a.kr, a.ri + i * a.kr, a.kr);
    if (a.kc) scan_cols(s, a.nt, i, a.cv + a.j0 * a.kc, a.ci + a.j0 * a.kc, a.cthr + a.j0, a.kc);
    if (a.G > 0)
      scan_groups(s, a.nt, a.j0, a.run_start, a.run_group, a.first_run, a.gv + i * a.G * a.gp, a.gi + i * a.G * a.gp,
                  a.gp);
  }
  if (a.row_mom != nullptr) tile_stats(a.metric, a.c, a.mt, a.nt, a.row_mom, a.col_mom, *a.scratch);
}

// Runs of equal group label over the database: run q covers [run_start[q], run_start[q+1]).
struct Runs {
  std::vector<int64_t> start;  // + sentinel N
  std::vector<int64_t> group;
  int64_t first(int64_t j0) const {
    return static_cast<int64_t>(std::upper_bound(start.begin(), start.end() - 1, j0) - start.begin()) - 1;
  }
};

Runs make_runs(const int64_t* groups, int64_t n) {
  Runs runs;
  for (int64_t j = 0; j < n; ++j) {
    if (j == 0 || groups[j] != groups[j - 1]) {
      runs.start.push_back(j);
      runs.group.push_back(groups[j]);
    }
  }
  runs.start.push_back(n);
  return runs;
}

// Per-thread state of the main pass.
struct ThreadState {
  at::Tensor tile;  // torch's CPU allocator: 64-byte aligned, as MKL likes its output
  std::vector<float> cv, cthr;  // column candidates (N x kc) and their last values (N)
  std::vector<int64_t> ci;
  StatScratch stat;
  bool used = false;
};

// Exact re-rank + certificate of one candidate list of row `a`: approx values vals / indices idx (into
// `b`, sorted best first, capacity cap, kNoIndex-padded), k wanted, error bound delta.
// Only candidates whose approx key reaches band_threshold(k-th approx - delta, delta) get an exact key:
// k-th approx - delta bounds the exact k-th key from below, so the others (and everything not kept)
// rank strictly below it. Fills rv/id/key (sorted by rank value desc, index asc) with those candidates
// and returns how many; `certified` tells whether they provably contain the exact top-k; when not,
// `band` is the threshold of the exact band pass.
int rerank(int metric, const float* a, double a_norm, const float* b, const double* b_norm, int64_t dim,
           const float* vals, const int64_t* idx, int cap, int k, double delta, float* rv, int64_t* id, double* key,
           bool& certified, double& band) {
  int n = 0;
  while (n < cap && idx[n] != kNoIndex) ++n;
  int use = n;
  if (n > k) {
    const double cutoff = fprt_sim::band_threshold(metric, static_cast<double>(vals[k - 1]) - delta, delta);
    use = k;
    while (use < n && static_cast<double>(vals[use]) >= cutoff) ++use;
  }
  for (int p = 0; p < use; ++p) id[p] = idx[p];
  exact_keys_batch(metric, a, a_norm, b, b_norm, dim, id, use, key);
  for (int p = 0; p < use; ++p) rv[p] = fprt_sim::rank_value(metric, key[p]);
  fprt_sim::sort_ranked(rv, id, key, use);
  const bool full = n == cap;
  if (use < n || !full) {
    certified = true;  // a kept candidate below the cutoff (so everything not kept is too), or all items kept
  } else {
    certified = use == 0 || fprt_sim::certified(metric, true, vals[cap - 1], delta, rv[std::min(use, k) - 1]);
  }
  band = certified || use == 0 ? fprt_sim::pos_inf_d() : fprt_sim::band_threshold(metric, key[std::min(use, k) - 1], delta);
  return use;
}

// Exact band pass: for each of `rows` of side a (with approx keys >= thr[f] against side b) the exact
// top-k, and for each group g with gthr[f * G + g] finite, the exact best. Outputs sized rows.size() x ...
struct BandOut {
  std::vector<float> rv;
  std::vector<int64_t> id;
  std::vector<float> grv;
  std::vector<int64_t> gid;
};

BandOut band_pass(int metric, int64_t dim, const Side& a, const std::vector<int64_t>& rows, const Side& b,
                  const std::vector<double>& thr, int k, const int64_t* groups, int64_t G,
                  const std::vector<double>& gthr, int64_t tm, int64_t tn) {
  const int64_t nf = static_cast<int64_t>(rows.size());
  BandOut out;
  out.rv.assign(nf * std::max<int64_t>(k, 1), fprt_sim::neg_inf_f());
  out.id.assign(nf * std::max<int64_t>(k, 1), kNoIndex);
  out.grv.assign(nf * std::max<int64_t>(G, 1), fprt_sim::neg_inf_f());
  out.gid.assign(nf * std::max<int64_t>(G, 1), kNoIndex);
  if (nf == 0) return out;
  // Gather the failed rows so the GEMM reads them contiguously.
  std::vector<float> ga(nf * dim);
  std::vector<float> gaux(nf);
  for (int64_t f = 0; f < nf; ++f) {
    std::copy(a.x + rows[f] * dim, a.x + (rows[f] + 1) * dim, ga.begin() + f * dim);
    gaux[f] = a.aux[rows[f]];
  }
  const int64_t nblk = (nf + tm - 1) / tm;
  at::parallel_for(0, nblk, 1, [&](int64_t bb, int64_t be) {
    const int prev = MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : 0;
    at::Tensor tile_t = at::empty({tm * tn}, at::kFloat);
    float* tile = tile_t.data_ptr<float>();
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t f0 = blk * tm, mt = std::min(tm, nf - f0);
      for (int64_t j0 = 0; j0 < b.rows; j0 += tn) {
        const int64_t nt = std::min(tn, b.rows - j0);
        tile_gemm(ga.data() + f0 * dim, mt, b.x + j0 * dim, nt, dim, tile);
        to_keys(metric, tile, mt, nt, gaux.data() + f0, b.aux.data() + j0);
        for (int64_t r = 0; r < mt; ++r) {
          const int64_t f = f0 + r, i = rows[f];
          const float* s = tile + r * nt;
          const float* qa = a.x + i * dim;
          const double t_row = k > 0 ? thr[f] : fprt_sim::pos_inf_d();
          for (int64_t j = 0; j < nt; ++j) {
            const double sj = static_cast<double>(s[j]);
            const bool in_row = sj >= t_row;
            const bool in_grp = G > 0 && sj >= gthr[f * G + groups[j0 + j]];
            if (!in_row && !in_grp) continue;
            const int64_t jj = j0 + j;
            const double key = exact_key_cpu(metric, qa, b.x + jj * dim, dim, a.norm[i], b.norm[jj]);
            const float rv = fprt_sim::rank_value(metric, key);
            if (in_row) fprt_sim::topk_insert(out.rv.data() + f * k, out.id.data() + f * k, k, rv, jj);
            if (in_grp) {
              const int64_t g = groups[jj];
              fprt_sim::topk_insert(out.grv.data() + f * G + g, out.gid.data() + f * G + g, 1, rv, jj);
            }
          }
        }
      }
    }
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(prev);
  });
  return out;
}

void check_input(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, name, " must be float32");
  TORCH_CHECK(t.dim() == 2 && t.is_contiguous(), name, " must be a contiguous 2-D tensor");
}

at::Tensor moments_tensor(const std::vector<Moments>& m) {
  at::Tensor out = at::empty({static_cast<int64_t>(m.size()), 5}, at::kDouble);
  double* p = out.data_ptr<double>();
  for (size_t i = 0; i < m.size(); ++i) {
    p[i * 5 + 0] = m[i].n;
    p[i * 5 + 1] = m[i].mean;
    p[i * 5 + 2] = m[i].m2;
    p[i * 5 + 3] = m[i].min;
    p[i * 5 + 4] = m[i].max;
  }
  return out;
}

// The main entry point. Returns [row_vals, row_idx, col_vals, col_idx, group_best, group_arg,
// row_moments (M x 5), col_moments (N x 5), global_moments (1 x 5), rechecks int64 [rows, cols, group cells]].
// Empty tensors for what was not asked.
std::vector<at::Tensor> reduce(const at::Tensor& Qt, const at::Tensor& Rt, int64_t metric, int64_t row_k,
                               int64_t col_k, const at::Tensor& groups_t, int64_t n_groups, bool stats, int64_t tile_m,
                               int64_t tile_n, int64_t pad, int64_t group_pad) {
  check_input(Qt, "Q");
  check_input(Rt, "R");
  TORCH_CHECK(metric == kCosine || metric == kInnerProduct || metric == kL2, "unknown metric ", metric);
  const int64_t M = Qt.size(0), N = Rt.size(0), D = Qt.size(1);
  TORCH_CHECK(Rt.size(1) == D, "Q and R must have the same number of columns");
  TORCH_CHECK(M > 0 && N > 0 && D > 0, "empty input");
  TORCH_CHECK(row_k >= 0 && row_k <= N, "row_k must be in [0, N]");
  TORCH_CHECK(col_k >= 0 && col_k <= M, "col_k must be in [0, M]");
  TORCH_CHECK(pad >= 0 && group_pad >= 0, "pad must be >= 0");
  const int64_t G = n_groups;
  const int64_t* groups = nullptr;
  if (G > 0) {
    TORCH_CHECK(groups_t.device().is_cpu() && groups_t.scalar_type() == at::kLong && groups_t.dim() == 1 &&
                    groups_t.size(0) == N && groups_t.is_contiguous(),
                "groups must be a contiguous int64 CPU tensor of length N");
    groups = groups_t.data_ptr<int64_t>();
    for (int64_t j = 0; j < N; ++j) TORCH_CHECK(groups[j] >= 0 && groups[j] < G, "group label out of range");
  }
  const int m = static_cast<int>(metric);
  const int T = std::max(1, at::get_num_threads());
  // Default query block: 512 rows, fewer when M is small so that every thread gets blocks to work on.
  const fprt_sim::plan::Tiles tiles = fprt_sim::plan::cpu_tiles(M, N, tile_m, tile_n, T);
  const int64_t tm = tiles.tm, tn = tiles.tn;
  const int kr = row_k > 0 ? static_cast<int>(row_k + pad) : 0;
  const int kc = col_k > 0 ? static_cast<int>(col_k + pad) : 0;
  const int gp = G > 0 ? static_cast<int>(1 + group_pad) : 0;

  const Side q = make_side(Qt.data_ptr<float>(), M, D, m);
  const Side r = make_side(Rt.data_ptr<float>(), N, D, m);
  // Input errors, found by the norm pass (fprt.runtime.similarity turns these into InputError).
  for (const auto& [side, name] : {std::pair<const Side*, const char*>{&q, "Q"}, {&r, "R"}}) {
    TORCH_CHECK(side->first_nonfinite < 0, "fprt-input-error: ", name, " row ", side->first_nonfinite,
                " contains NaN or Inf");
    TORCH_CHECK(m != kCosine || side->first_zero < 0, "fprt-input-error: ", name, " row ", side->first_zero,
                " is zero (or below 1e-30): cosine similarity is undefined for it");
  }
  const double bound = m == kL2 ? 4.0 * std::max(q.max_norm, r.max_norm) * std::max(q.max_norm, r.max_norm)
                                : q.max_norm * r.max_norm;
  TORCH_CHECK(bound <= 1e36, "fprt-input-error: values too large for float32 arithmetic (max |Q row| = ", q.max_norm,
              ", max |R row| = ", r.max_norm, ")");
  const double factor = fprt_sim::delta_factor(D, gemm_input_rounding(), fprt_sim::kRoundToNearest);
  Runs runs;
  if (G > 0) runs = make_runs(groups, N);

  // Row, group and row-moment state live in shared arrays: each row belongs to one query block.
  std::vector<float> rv_a(M * kr);
  std::vector<int64_t> ri_a(M * kr);
  std::vector<float> gv_a(M * G * gp);
  std::vector<int64_t> gi_a(M * G * gp);
  for (int64_t i = 0; i < M; ++i) {
    if (kr) fprt_sim::topk_init(rv_a.data() + i * kr, ri_a.data() + i * kr, kr);
    for (int64_t g = 0; g < G; ++g) fprt_sim::topk_init(gv_a.data() + (i * G + g) * gp, gi_a.data() + (i * G + g) * gp, gp);
  }
  std::vector<Moments> row_mom(stats ? M : 0, fprt_sim::moments_empty());

  // Threads pull work units of query blocks from a counter (dynamic load balance on a shared machine).
  // Without statistics a unit is one block, so at the end a thread waits for at most one block of the
  // other (coarse chunks of ~6 blocks cost up to 10 % at 2 threads); with statistics column moments are
  // kept per unit and merged in unit order, so they do not depend on which thread ran which unit
  // (fprt_sim::plan::cpu_work_units bounds their memory).
  const int64_t nblk = (M + tm - 1) / tm;
  const int64_t nchunks = fprt_sim::plan::cpu_work_units(nblk, N, stats, T);
  std::vector<std::vector<Moments>> chunk_cm(stats ? nchunks : 0);
  std::vector<ThreadState> states(T);
  std::atomic<int64_t> next_chunk{0};

  at::parallel_for(0, T, 1, [&](int64_t tb, int64_t te) {
    const int prev = MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : 0;
    for (int64_t t = tb; t < te; ++t) {
      ThreadState& st = states[t];
      for (;;) {
        const int64_t chunk = next_chunk.fetch_add(1);
        if (chunk >= nchunks) break;
        if (!st.used) {
          st.used = true;
          st.tile = at::empty({tm * tn}, at::kFloat);
          if (kc) {
            st.cv.resize(N * kc);
            st.ci.resize(N * kc);
            st.cthr.assign(N, fprt_sim::neg_inf_f());
            for (int64_t j = 0; j < N; ++j) fprt_sim::topk_init(st.cv.data() + j * kc, st.ci.data() + j * kc, kc);
          }
          if (stats) {
            st.stat.sum.resize(tn);
            st.stat.m2.resize(tn);
            st.stat.mn.resize(tn);
            st.stat.mx.resize(tn);
          }
        }
        Moments* cm = nullptr;
        if (stats) {
          chunk_cm[chunk].assign(N, fprt_sim::moments_empty());
          cm = chunk_cm[chunk].data();
        }
        const int64_t b0 = chunk * nblk / nchunks, b1 = (chunk + 1) * nblk / nchunks;
        for (int64_t blk = b0; blk < b1; ++blk) {
          const int64_t i0 = blk * tm, mt = std::min(tm, M - i0);
          for (int64_t j0 = 0; j0 < N; j0 += tn) {
            const int64_t nt = std::min(tn, N - j0);
            float* c = st.tile.data_ptr<float>();
            tile_gemm(q.x + i0 * D, mt, r.x + j0 * D, nt, D, c);
            TileArgs args{m,
                          c,
                          mt,
                          nt,
                          i0,
                          j0,
                          q.aux.data() + i0,
                          r.aux.data() + j0,
                          kr,
                          rv_a.data(),
                          ri_a.data(),
                          kc,
                          st.cv.data(),
                          st.ci.data(),
                          st.cthr.data(),
                          G,
                          gp,
                          gv_a.data(),
                          gi_a.data(),
                          G > 0 ? runs.start.data() : nullptr,
                          G > 0 ? runs.group.data() : nullptr,
                          G > 0 ? runs.first(j0) : 0,
                          stats ? row_mom.data() + i0 : nullptr,
                          stats ? cm + j0 : nullptr,
                          &st.stat};
            process_tile(args);
          }
        }
      }
    }
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(prev);
  });

  fprt_sim::Rechecks rechecks;
  std::vector<at::Tensor> out(10);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const auto i64 = at::TensorOptions().dtype(at::kLong);

  // ---- rows and groups: exact re-rank, certificate, band pass for the rest.
  at::Tensor row_vals = at::empty({M, row_k}, f32), row_idx = at::empty({M, row_k}, i64);
  at::Tensor grp_best = at::empty({M, G}, f32), grp_arg = at::empty({M, G}, i64);
  std::vector<uint8_t> row_failed(M, 0);
  std::vector<double> row_thr(M, fprt_sim::pos_inf_d());
  std::vector<double> grp_thr(M * G, fprt_sim::pos_inf_d());
  if (kr || G > 0) {
    float* ov = row_vals.data_ptr<float>();
    int64_t* oi = row_idx.data_ptr<int64_t>();
    float* gb = grp_best.data_ptr<float>();
    int64_t* ga = grp_arg.data_ptr<int64_t>();
    at::parallel_for(0, M, 64, [&](int64_t b, int64_t e) {
      const int cap = std::max(kr, gp);
      std::vector<float> rv(cap);
      std::vector<int64_t> id(cap);
      std::vector<double> key(cap);
      for (int64_t i = b; i < e; ++i) {
        const double delta = row_delta(m, factor, D, q, i, r);
        if (kr) {
          bool ok;
          double band;
          rerank(m, q.x + i * D, q.norm[i], r.x, r.norm.data(), D, rv_a.data() + i * kr, ri_a.data() + i * kr, kr,
                 static_cast<int>(row_k), delta, rv.data(), id.data(), key.data(), ok, band);
          if (ok) {
            for (int64_t p = 0; p < row_k; ++p) {
              ov[i * row_k + p] = fprt_sim::output_value(m, rv[p]);
              oi[i * row_k + p] = id[p];
            }
          } else {
            row_failed[i] = 1;
            row_thr[i] = band;
          }
        }
        for (int64_t g = 0; g < G; ++g) {
          bool ok;
          double band;
          const int n = rerank(m, q.x + i * D, q.norm[i], r.x, r.norm.data(), D, gv_a.data() + (i * G + g) * gp,
                               gi_a.data() + (i * G + g) * gp, gp, 1, delta, rv.data(), id.data(), key.data(), ok, band);
          if (n == 0) {  // an empty group
            gb[i * G + g] = fprt_sim::output_value(m, fprt_sim::neg_inf_f());
            ga[i * G + g] = -1;
          } else if (ok) {
            gb[i * G + g] = fprt_sim::output_value(m, rv[0]);
            ga[i * G + g] = id[0];
          } else {
            row_failed[i] = 1;
            grp_thr[i * G + g] = band;
          }
        }
      }
    });
    std::vector<int64_t> failed;
    for (int64_t i = 0; i < M; ++i) {
      if (row_failed[i]) failed.push_back(i);
      if (kr && row_thr[i] != fprt_sim::pos_inf_d()) ++rechecks.rows;
      for (int64_t g = 0; g < G; ++g) rechecks.group_cells += grp_thr[i * G + g] != fprt_sim::pos_inf_d();
    }
    if (!failed.empty()) {
      std::vector<double> thr_f(failed.size()), gthr_f(failed.size() * G);
      for (size_t f = 0; f < failed.size(); ++f) {
        thr_f[f] = row_thr[failed[f]];
        for (int64_t g = 0; g < G; ++g) gthr_f[f * G + g] = grp_thr[failed[f] * G + g];
      }
      BandOut band = band_pass(m, D, q, failed, r, thr_f, static_cast<int>(row_k), groups, G, gthr_f, tm, tn);
      for (size_t f = 0; f < failed.size(); ++f) {
        const int64_t i = failed[f];
        if (kr && row_thr[i] != fprt_sim::pos_inf_d()) {
          for (int64_t p = 0; p < row_k; ++p) {
            TORCH_CHECK(band.id[f * row_k + p] != kNoIndex, "internal error: band pass lost a row candidate");
            ov[i * row_k + p] = fprt_sim::output_value(m, band.rv[f * row_k + p]);
            oi[i * row_k + p] = band.id[f * row_k + p];
          }
        }
        for (int64_t g = 0; g < G; ++g) {
          if (grp_thr[i * G + g] == fprt_sim::pos_inf_d()) continue;
          TORCH_CHECK(band.gid[f * G + g] != kNoIndex, "internal error: band pass lost a group candidate");
          gb[i * G + g] = fprt_sim::output_value(m, band.grv[f * G + g]);
          ga[i * G + g] = band.gid[f * G + g];
        }
      }
    }
  }

  // ---- columns: merge the threads' lists, exact re-rank, certificate, band pass.
  at::Tensor col_vals = at::empty({N, col_k}, f32), col_idx = at::empty({N, col_k}, i64);
  if (kc) {
    std::vector<int> used;
    for (int t = 0; t < T; ++t)
      if (states[t].used) used.push_back(t);
    ThreadState& s0 = states[used[0]];
    float* ov = col_vals.data_ptr<float>();
    int64_t* oi = col_idx.data_ptr<int64_t>();
    std::vector<double> col_thr(N, fprt_sim::pos_inf_d());
    at::parallel_for(0, N, 256, [&](int64_t b, int64_t e) {
      std::vector<float> rv(kc);
      std::vector<int64_t> id(kc);
      std::vector<double> key(kc);
      for (int64_t j = b; j < e; ++j) {
        float* v = s0.cv.data() + j * kc;
        int64_t* ix = s0.ci.data() + j * kc;
        for (size_t u = 1; u < used.size(); ++u)
          fprt_sim::topk_merge(v, ix, states[used[u]].cv.data() + j * kc, states[used[u]].ci.data() + j * kc, kc);
        const double delta = row_delta(m, factor, D, r, j, q);
        bool ok;
        double band;
        rerank(m, r.x + j * D, r.norm[j], q.x, q.norm.data(), D, v, ix, kc, static_cast<int>(col_k), delta, rv.data(),
               id.data(), key.data(), ok, band);
        if (ok) {
          for (int64_t p = 0; p < col_k; ++p) {
            ov[j * col_k + p] = fprt_sim::output_value(m, rv[p]);
            oi[j * col_k + p] = id[p];
          }
        } else {
          col_thr[j] = band;
        }
      }
    });
    std::vector<int64_t> failed;
    std::vector<double> thr_f;
    for (int64_t j = 0; j < N; ++j) {
      if (col_thr[j] != fprt_sim::pos_inf_d()) {
        failed.push_back(j);
        thr_f.push_back(col_thr[j]);
      }
    }
    rechecks.cols = static_cast<int64_t>(failed.size());
    if (!failed.empty()) {
      BandOut band = band_pass(m, D, r, failed, q, thr_f, static_cast<int>(col_k), nullptr, 0, {}, tm, tn);
      for (size_t f = 0; f < failed.size(); ++f) {
        const int64_t j = failed[f];
        for (int64_t p = 0; p < col_k; ++p) {
          TORCH_CHECK(band.id[f * col_k + p] != kNoIndex, "internal error: band pass lost a column candidate");
          ov[j * col_k + p] = fprt_sim::output_value(m, band.rv[f * col_k + p]);
          oi[j * col_k + p] = band.id[f * col_k + p];
        }
      }
    }
  }

  // ---- moments.
  at::Tensor row_m = at::empty({0, 5}, at::kDouble), col_m = at::empty({0, 5}, at::kDouble),
             glob_m = at::empty({0, 5}, at::kDouble);
  if (stats) {
    std::vector<Moments> col_mom(N, fprt_sim::moments_empty());
    at::parallel_for(0, N, 1024, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j)
        for (int64_t c = 0; c < nchunks; ++c) col_mom[j] = fprt_sim::moments_merge(col_mom[j], chunk_cm[c][j]);
    });
    Moments g = fprt_sim::moments_empty();
    for (int64_t i = 0; i < M; ++i) g = fprt_sim::moments_merge(g, row_mom[i]);
    row_m = moments_tensor(row_mom);
    col_m = moments_tensor(col_mom);
    glob_m = moments_tensor({g});
  }
  at::Tensor info = at::empty({3}, i64);
  info[0] = rechecks.rows;
  info[1] = rechecks.cols;
  info[2] = rechecks.group_cells;
  return {row_vals, row_idx, col_vals, col_idx, grp_best, grp_arg, row_m, col_m, glob_m, info};
}

// Exact keys of given pairs (float64, fixed order): for tests and for checking the pure-torch fallback.
at::Tensor exact_keys(const at::Tensor& A, const at::Tensor& B, int64_t metric, const at::Tensor& ia,
                      const at::Tensor& ib) {
  check_input(A, "A");
  check_input(B, "B");
  TORCH_CHECK(ia.scalar_type() == at::kLong && ib.scalar_type() == at::kLong && ia.numel() == ib.numel(),
              "ia, ib: int64 of equal length");
  const int64_t D = A.size(1);
  at::Tensor iac = ia.contiguous(), ibc = ib.contiguous();
  const int64_t* pa = iac.data_ptr<int64_t>();
  const int64_t* pb = ibc.data_ptr<int64_t>();
  at::Tensor out = at::empty({ia.numel()}, at::kDouble);
  exact_pairs(static_cast<int>(metric), A.data_ptr<float>(), B.data_ptr<float>(), D, pa, pb, ia.numel(),
              out.data_ptr<double>());
  return out;
}

// The same through the shared header's scalar definition (what the CUDA kernels run), for the tests.
at::Tensor exact_keys_header(const at::Tensor& A, const at::Tensor& B, int64_t metric, const at::Tensor& ia,
                             const at::Tensor& ib) {
  check_input(A, "A");
  check_input(B, "B");
  const int64_t D = A.size(1);
  at::Tensor iac = ia.contiguous(), ibc = ib.contiguous();
  const int64_t* pa = iac.data_ptr<int64_t>();
  const int64_t* pb = ibc.data_ptr<int64_t>();
  at::Tensor out = at::empty({ia.numel()}, at::kDouble);
  double* o = out.data_ptr<double>();
  for (int64_t t = 0; t < ia.numel(); ++t) {
    const float* x = A.data_ptr<float>() + pa[t] * D;
    const float* y = B.data_ptr<float>() + pb[t] * D;
    o[t] = fprt_sim::exact_key(static_cast<int>(metric), x, y, D, fprt_sim::exact_norm(x, D), fprt_sim::exact_norm(y, D));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The GPU's re-rank / certificate / band logic on the CPU (for tests): row top-k from a given matrix of
// approx keys C (M x N float32, e.g. an emulated tensor-core GEMM), with the shared header's candidate
// lists (topk_insert), exact keys (exact_key), finalize_list and band threshold - what finalize_kernel
// and band_kernel run - and the error bound for `accumulation` (0: round to nearest, 1: truncating blocks).
// Returns [values M x k, indices M x k, rechecked rows (M,) uint8, delta per row (M,) float64].
std::vector<at::Tensor> topk_from_approx(const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, int64_t metric,
                                         int64_t k, int64_t pad, int64_t accumulation, double u_in) {
  check_input(A, "A");
  check_input(B, "B");
  check_input(C, "C");
  const int64_t M = A.size(0), N = B.size(0), D = A.size(1);
  TORCH_CHECK(C.size(0) == M && C.size(1) == N && B.size(1) == D, "C must be M x N");
  TORCH_CHECK(k >= 1 && k <= N && pad >= 0, "k must be in [1, N]");
  const int m = static_cast<int>(metric);
  const float* a = A.data_ptr<float>();
  const float* b = B.data_ptr<float>();
  const float* c = C.data_ptr<float>();
  std::vector<double> an(M), as(M), bn(N);
  double b_max = 0.0, b_min = INFINITY;
  for (int64_t i = 0; i < M; ++i) {
    as[i] = fprt_sim::exact_dot(a + i * D, a + i * D, D);
    an[i] = std::sqrt(as[i]);
  }
  for (int64_t j = 0; j < N; ++j) {
    bn[j] = fprt_sim::exact_norm(b + j * D, D);
    b_max = std::max(b_max, bn[j]);
    b_min = std::min(b_min, bn[j]);
  }
  const double factor = fprt_sim::delta_factor(D, u_in, static_cast<int>(accumulation));
  const int cap = static_cast<int>(std::min<int64_t>(k + pad, N));
  at::Tensor out_v = at::empty({M, k}, at::kFloat), out_i = at::empty({M, k}, at::kLong);
  at::Tensor failed = at::zeros({M}, at::kByte), deltas = at::empty({M}, at::kDouble);
  std::vector<float> cv(cap), rv(cap);
  std::vector<int64_t> ci(cap), id(cap);
  std::vector<double> key(cap);
  for (int64_t i = 0; i < M; ++i) {
    const float* row = c + i * N;
    fprt_sim::topk_init(cv.data(), ci.data(), cap);
    for (int64_t j = 0; j < N; ++j) fprt_sim::topk_insert(cv.data(), ci.data(), cap, row[j], j);
    for (int p = 0; p < cap && ci[p] != kNoIndex; ++p)
      key[p] = fprt_sim::exact_key(m, a + i * D, b + ci[p] * D, D, an[i], bn[ci[p]]);
    const double delta = fprt_sim::error_bound(m, factor, D, an[i], as[i], b_max, b_min);
    deltas.data_ptr<double>()[i] = delta;
    double thr;
    float* ov = out_v.data_ptr<float>() + i * k;
    int64_t* oi = out_i.data_ptr<int64_t>() + i * k;
    if (fprt_sim::finalize_list(m, cv.data(), ci.data(), cap, static_cast<int>(k), delta, key.data(), rv.data(),
                                id.data(), ov, oi, &thr))
      continue;
    // band pass (band_kernel's rule): every item whose approx key reaches thr gets its exact key
    failed.data_ptr<uint8_t>()[i] = 1;
    std::vector<float> bv(k);
    std::vector<int64_t> bi(k);
    fprt_sim::topk_init(bv.data(), bi.data(), static_cast<int>(k));
    for (int64_t j = 0; j < N; ++j) {
      if (!(static_cast<double>(row[j]) >= thr)) continue;
      const double kx = fprt_sim::exact_key(m, a + i * D, b + j * D, D, an[i], bn[j]);
      fprt_sim::topk_insert(bv.data(), bi.data(), static_cast<int>(k), fprt_sim::rank_value(m, kx), j);
    }
    for (int64_t p = 0; p < k; ++p) {
      ov[p] = fprt_sim::output_value(m, bv[p]);
      oi[p] = bi[p] == kNoIndex ? -1 : bi[p];
    }
  }
  return {out_v, out_i, failed, deltas};
}

// Where topk_position puts (val, id) in a sorted list (the warp-parallel insertion's rule), for tests.
int64_t header_topk_position(const at::Tensor& vals, const at::Tensor& idx, double val, int64_t id) {
  TORCH_CHECK(vals.scalar_type() == at::kFloat && idx.scalar_type() == at::kLong && vals.numel() == idx.numel(),
              "vals float32, idx int64 of equal length");
  at::Tensor v = vals.contiguous(), x = idx.contiguous();
  return fprt_sim::topk_position(v.data_ptr<float>(), x.data_ptr<int64_t>(), static_cast<int>(v.numel()),
                                 static_cast<float>(val), id);
}

py::dict plan_info(int64_t M, int64_t N, int64_t tile_m, int64_t tile_n, int64_t threads, bool stats, int64_t kr,
                   int64_t smem_limit, int64_t sm_count, int64_t row_bytes, int64_t free_bytes, int64_t env_rows) {
  namespace P = fprt_sim::plan;
  py::dict d;
  const P::Tiles ct = P::cpu_tiles(M, N, tile_m, tile_n, static_cast<int>(threads));
  const P::Tiles gt = P::gpu_tiles(M, N, tile_m, tile_n);
  d["cpu_tile"] = py::make_tuple(ct.tm, ct.tn);
  d["cpu_work_units"] = P::cpu_work_units((M + ct.tm - 1) / ct.tm, N, stats, static_cast<int>(threads));
  d["cpu_blocks"] = (M + ct.tm - 1) / ct.tm;
  d["gpu_tile"] = py::make_tuple(gt.tm, gt.tn);
  const P::RowScan rs = P::row_scan(kr, smem_limit);
  d["row_scan"] = py::dict(py::arg("warps_per_block") = rs.warps_per_block, py::arg("shared") = rs.shared,
                           py::arg("warp_insert") = rs.warp_insert, py::arg("smem_bytes") = rs.smem_bytes);
  d["col_slabs"] = P::col_slabs(gt.tm, gt.tn, static_cast<int>(sm_count));
  d["stream_chunk_rows"] = P::stream_chunk_rows(N, row_bytes, free_bytes, gt.tn, env_rows);
  return d;
}

py::dict build_info() {
  py::dict d;
  d["torch_version"] = std::string(TORCH_VERSION);
  d["source_hash"] = std::string(FPRT_STR(FPRT_SOURCE_HASH)).substr(1);
  d["device"] = std::string("cpu");
#if defined(__VERSION__)
  d["compiler"] = std::string(__VERSION__);
#endif
  d["mkl_local_threads"] = MKL_Set_Num_Threads_Local != nullptr;
  d["default_tile"] = py::make_tuple(kDefaultTileM, kDefaultTileN);
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fprt similarity reductions on the CPU (see fprt.runtime.similarity)";
  m.def("reduce", &reduce, "one-pass similarity reductions", py::arg("Q"), py::arg("R"), py::arg("metric"),
        py::arg("row_k"), py::arg("col_k"), py::arg("groups"), py::arg("n_groups"), py::arg("stats"),
        py::arg("tile_m"), py::arg("tile_n"), py::arg("pad"), py::arg("group_pad"),
        py::call_guard<py::gil_scoped_release>());
  m.def("exact_keys", &exact_keys, "exact float64 keys of pairs", py::arg("A"), py::arg("B"), py::arg("metric"),
        py::arg("ia"), py::arg("ib"));
  m.def("exact_keys_header", &exact_keys_header, "exact keys through the shared header (the GPU's code)",
        py::arg("A"), py::arg("B"), py::arg("metric"), py::arg("ia"), py::arg("ib"));
  m.def("build_info", &build_info, "how this module was built");
  m.def("topk_from_approx", &topk_from_approx, "the GPU's re-rank / certificate / band logic on given approx keys",
        py::arg("A"), py::arg("B"), py::arg("C"), py::arg("metric"), py::arg("k"), py::arg("pad"),
        py::arg("accumulation"), py::arg("u_in") = 0.0);
  m.def("error_bound_factor", [](int64_t dim, double u_in, int64_t acc) { return fprt_sim::delta_factor(dim, u_in, static_cast<int>(acc)); },
        "delta_factor of fprt_sim/epilogue.h", py::arg("dim"), py::arg("u_in"), py::arg("accumulation"));
  m.def("error_bound", [](int64_t metric, double factor, int64_t dim, double a_norm, double a_sq, double b_max, double b_min) {
          return fprt_sim::error_bound(static_cast<int>(metric), factor, dim, a_norm, a_sq, b_max, b_min);
        }, "error_bound of fprt_sim/epilogue.h", py::arg("metric"), py::arg("factor"), py::arg("dim"), py::arg("a_norm"),
        py::arg("a_sq"), py::arg("b_max"), py::arg("b_min"));
  m.def("header_topk_position", &header_topk_position, "topk_position of fprt_sim/epilogue.h", py::arg("vals"),
        py::arg("idx"), py::arg("val"), py::arg("id"));
  m.def("plan", &plan_info, "the planning of fprt_sim/plan.h (tiles, work units, GPU kernel shapes, streaming)",
        py::arg("M"), py::arg("N"), py::arg("tile_m") = 0, py::arg("tile_n") = 0, py::arg("threads") = 1,
        py::arg("stats") = false, py::arg("kr") = 14, py::arg("smem_limit") = 48 * 1024, py::arg("sm_count") = 132,
        py::arg("row_bytes") = 1024, py::arg("free_bytes") = int64_t{1} << 30, py::arg("env_rows") = 0);
}
