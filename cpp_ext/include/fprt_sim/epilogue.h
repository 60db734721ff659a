// fprt similarity: the reduction logic shared by the CPU (.cpp) and CUDA (.cu) extensions.
//
// Everything here is `__host__ __device__` (FPRT_HD) and compiled by both: the CPU tests exercise
// exactly the logic the GPU kernels run (top-k insertion and merge with the tie rule, group best,
// running moments, the exact fixed-order re-rank and the certificate that makes results exact).
//
// Vocabulary
//   key       a double or float where larger means closer, in the metric's own units:
//             cosine: cos(q, r); inner product: q.r; L2: -|q - r|^2 (negative squared distance).
//   approx    the key computed from the tile GEMM in float32 (fp32 accumulate); |approx - exact| <= delta.
//   exact     the key computed in float64 in a fixed order (exact_dot / exact_sqdist below), a pure
//             function of the two input rows: the same bits on any device, tile, shard or thread count.
//   rank value (rv)  float32 derived from the exact key, larger is closer: cos/ip: (float)key;
//             L2: -(float)sqrt(-key). Results are ordered by (rv descending, index ascending) - ties
//             go to the lower index - and reported as rv (cos/ip) or -rv (L2 distance).
//
// Exactness: candidates are collected by approx key with `pad` spare places; after the exact re-rank
// `certified()` proves that no item outside the candidate list can enter the top-k (using the rigorous
// float32 GEMM error bound delta); when it cannot, the caller runs a band pass over every item whose
// approx key reaches `band_threshold()`. The reported top-k is therefore the exact top-k of the fixed-order
// float64 keys under the total order above, whatever the tiling, sharding or device.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define FPRT_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define FPRT_HD inline __attribute__((always_inline))
#else
#define FPRT_HD inline
#endif

namespace fprt_sim {

enum Metric : int { kCosine = 0, kInnerProduct = 1, kL2 = 2 };

// Empty slot of a candidate list: value -inf, index kNoIndex (ranks after every real candidate).
constexpr int64_t kNoIndex = INT64_MAX;

FPRT_HD float neg_inf_f() { return -INFINITY; }
FPRT_HD double pos_inf_d() { return INFINITY; }

// ---------------------------------------------------------------------------------------------
// Total order and sorted candidate lists (best first).

// True when (va, ia) ranks strictly before (vb, ib): larger value first, ties to the lower index.
FPRT_HD bool ranks_before(float va, int64_t ia, float vb, int64_t ib) {
  return va > vb || (va == vb && ia < ib);
}

FPRT_HD void topk_init(float* vals, int64_t* idx, int k) {
  for (int p = 0; p < k; ++p) {
    vals[p] = neg_inf_f();
    idx[p] = kNoIndex;
  }
}

// Insert (val, id) into the sorted list of capacity k; returns false when it does not enter.
// Inserting the same candidates in any order gives the same list (the order is total).
FPRT_HD bool topk_insert(float* vals, int64_t* idx, int k, float val, int64_t id) {
  if (!ranks_before(val, id, vals[k - 1], idx[k - 1])) return false;
  int p = k - 1;
  while (p > 0 && ranks_before(val, id, vals[p - 1], idx[p - 1])) {
    vals[p] = vals[p - 1];
    idx[p] = idx[p - 1];
    --p;
  }
  vals[p] = val;
  idx[p] = id;
  return true;
}

// Merge the sorted list b (capacity k) into the sorted list a (capacity k).
FPRT_HD void topk_merge(float* a_vals, int64_t* a_idx, const float* b_vals, const int64_t* b_idx, int k) {
  for (int p = 0; p < k; ++p) {
    if (b_idx[p] == kNoIndex) break;
    if (!topk_insert(a_vals, a_idx, k, b_vals[p], b_idx[p])) break;  // b is sorted: the rest cannot enter
  }
}

// Sort n entries (n small) by (rv desc, idx asc), carrying the float64 keys along. Insertion sort.
FPRT_HD void sort_ranked(float* rv, int64_t* idx, double* key, int n) {
  for (int i = 1; i < n; ++i) {
    float v = rv[i];
    int64_t id = idx[i];
    double kv = key[i];
    int p = i;
    while (p > 0 && ranks_before(v, id, rv[p - 1], idx[p - 1])) {
      rv[p] = rv[p - 1];
      idx[p] = idx[p - 1];
      key[p] = key[p - 1];
      --p;
    }
    rv[p] = v;
    idx[p] = id;
    key[p] = kv;
  }
}

// ---------------------------------------------------------------------------------------------
// Running moments (count, mean, M2, min, max) in float64; merged with Chan et al.'s parallel update,
// so per-tile partials, per-thread partials and shard partials combine to the same result up to
// float64 rounding (relative differences ~1e-15 * log2(count); tests allow 1e-9).

struct Moments {
  double n;
  double mean;
  double m2;
  double min;
  double max;
};

FPRT_HD Moments moments_empty() { return Moments{0.0, 0.0, 0.0, pos_inf_d(), -pos_inf_d()}; }

FPRT_HD Moments moments_merge(const Moments& a, const Moments& b) {
  if (b.n == 0.0) return a;
  if (a.n == 0.0) return b;
  Moments out;
  out.n = a.n + b.n;
  const double d = b.mean - a.mean;
  out.mean = a.mean + d * (b.n / out.n);
  out.m2 = a.m2 + b.m2 + d * d * (a.n * b.n / out.n);
  out.min = a.min < b.min ? a.min : b.min;
  out.max = a.max > b.max ? a.max : b.max;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Exact keys: float64, fixed order (four interleaved partial sums over d mod 4, combined as
// (s0 + s1) + (s2 + s3)), no fused multiply-add: the host build uses -ffp-contract=off and the device
// uses the _rn intrinsics, so the same inputs give the same bits on CPU and GPU. The pure-torch
// fallback (fprt/runtime/similarity_fallback.py) reproduces the same order.

FPRT_HD double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

FPRT_HD double dsub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

FPRT_HD double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

FPRT_HD double to_double(float x) { return static_cast<double>(x); }
#if defined(__CUDACC__)
FPRT_HD double to_double(__half x) { return static_cast<double>(__half2float(x)); }
FPRT_HD double to_double(__nv_bfloat16 x) { return static_cast<double>(__bfloat162float(x)); }
#endif

template <typename T>
FPRT_HD double exact_dot(const T* a, const T* b, int64_t dim) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t d = 0;
  for (; d + 4 <= dim; d += 4) {
    s0 = dadd(s0, dmul(to_double(a[d]), to_double(b[d])));
    s1 = dadd(s1, dmul(to_double(a[d + 1]), to_double(b[d + 1])));
    s2 = dadd(s2, dmul(to_double(a[d + 2]), to_double(b[d + 2])));
    s3 = dadd(s3, dmul(to_double(a[d + 3]), to_double(b[d + 3])));
  }
  if (d < dim) s0 = dadd(s0, dmul(to_double(a[d]), to_double(b[d])));
  if (d + 1 < dim) s1 = dadd(s1, dmul(to_double(a[d + 1]), to_double(b[d + 1])));
  if (d + 2 < dim) s2 = dadd(s2, dmul(to_double(a[d + 2]), to_double(b[d + 2])));
  return dadd(dadd(s0, s1), dadd(s2, s3));
}

template <typename T>
FPRT_HD double exact_sqdist(const T* a, const T* b, int64_t dim) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t d = 0;
  for (; d + 4 <= dim; d += 4) {
    const double e0 = dsub(to_double(a[d]), to_double(b[d]));
    const double e1 = dsub(to_double(a[d + 1]), to_double(b[d + 1]));
    const double e2 = dsub(to_double(a[d + 2]), to_double(b[d + 2]));
    const double e3 = dsub(to_double(a[d + 3]), to_double(b[d + 3]));
    s0 = dadd(s0, dmul(e0, e0));
    s1 = dadd(s1, dmul(e1, e1));
    s2 = dadd(s2, dmul(e2, e2));
    s3 = dadd(s3, dmul(e3, e3));
  }
  if (d < dim) {
    const double e = dsub(to_double(a[d]), to_double(b[d]));
    s0 = dadd(s0, dmul(e, e));
  }
  if (d + 1 < dim) {
    const double e = dsub(to_double(a[d + 1]), to_double(b[d + 1]));
    s1 = dadd(s1, dmul(e, e));
  }
  if (d + 2 < dim) {
    const double e = dsub(to_double(a[d + 2]), to_double(b[d + 2]));
    s2 = dadd(s2, dmul(e, e));
  }
  return dadd(dadd(s0, s1), dadd(s2, s3));
}

// The row norm used by cosine (and by the error bounds): sqrt of the fixed-order self dot product.
template <typename T>
FPRT_HD double exact_norm(const T* a, int64_t dim) {
  return sqrt(exact_dot(a, a, dim));
}

// Exact key of a pair (larger is closer). na, nb: exact_norm of a and b (used by cosine only).
template <typename T>
FPRT_HD double exact_key(int metric, const T* a, const T* b, int64_t dim, double na, double nb) {
  if (metric == kL2) return -exact_sqdist(a, b, dim);
  const double dot = exact_dot(a, b, dim);
  if (metric == kCosine) return dot / dmul(na, nb);
  return dot;
}

// Rank value of a key (monotone non-decreasing in the key). Keys above 0 (upper bounds) clamp to
// distance 0 for L2.
FPRT_HD float rank_value(int metric, double key) {
  if (metric == kL2) {
    const double sq = key < 0.0 ? -key : 0.0;
    return -static_cast<float>(sqrt(sq));
  }
  return static_cast<float>(key);
}

// The value reported to the user: similarity (cos/ip, larger is closer) or Euclidean distance (L2,
// smaller is closer; not squared).
FPRT_HD float output_value(int metric, float rv) { return metric == kL2 ? -rv : rv; }

// ---------------------------------------------------------------------------------------------
// Error bound and certificate.

// How the GEMM that produced the approx keys accumulates. The CPU (MKL sgemm, fp32 FMA) rounds to
// nearest. GPU tensor cores (fp16 / bf16 / fp32 inputs with fp32 accumulate on A100 / Hopper) are reported
// to add a block of b products and the accumulator after aligning them to the largest exponent and to
// truncate (round toward zero) the bits shifted out and the normalised sum, so errors do not cancel.
enum Accumulation : int { kRoundToNearest = 0, kTruncatingBlocks = 1 };

// |approx - exact| <= delta_factor(...) * scale + underflow term (error_bound below), where scale is
//   cosine: 1;   inner product: |a| * max|b|;   L2: |a|^2 + max|b|^2.
// Round to nearest: gamma_D = D u / (1 - D u) bounds any fp32 summation order of D exact products
// (u = 2^-24). Truncating blocks: per block step each of the b + 1 aligned addends loses < ulp(largest)
// <= 2u * (sum of |products| so far) and the normalisation another 2u of it, so after ceil(D / b) steps
// the error is below (D + b)(1 + 2/b) * 2u * sum|a_d b_d|; for any b >= 4 (and for a plain truncating
// FMA chain, 2u per step) that is below gamma with u_acc = 4u over D + 16 terms - and sum|a_d b_d| <=
// |a||b| (Cauchy-Schwarz), so the scales above still hold. Plus a few roundings for the norms / scaling
// (8u), plus 2 * u_in when the GEMM rounds its inputs first (TF32: 2^-11, BF16: 2^-8; 0 for true fp32 and
// for 16-bit inputs whose exact keys use the same 16-bit values), times 1.03 for the float64 rounding of
// the exact keys and safety.
FPRT_HD double delta_factor(int64_t dim, double u_in, int accumulation = kRoundToNearest) {
  const double u = 5.9604644775390625e-08;  // 2^-24
  const double du = accumulation == kTruncatingBlocks ? static_cast<double>(dim + 16) * 4.0 * u : static_cast<double>(dim) * u;
  const double gamma = du / (1.0 - du);
  return 1.03 * (gamma + 8.0 * u + 2.0 * u_in);
}

// Underflow: a float32 product or partial sum below 2^-126 may be flushed to zero (FTZ on the GPU) or
// lose relative precision (subnormals): an absolute error of at most 2^-126 per term, which the relative
// bound above does not cover (rows of magnitude ~1e-19 and below). In key units:
//   inner product: (D + 16) * 2^-126;  cosine: that / (|a| * min|b|);  L2: twice that + the norms' own.
FPRT_HD double underflow_bound(int metric, int64_t dim, double a_norm, double b_min) {
  const double eta = 1.1754943508222875e-38;  // 2^-126
  const double t = static_cast<double>(dim + 16) * eta;
  if (metric == kCosine) return t / (a_norm * b_min) * 1.01;
  if (metric == kL2) return 2.0 * t + 4.0 * eta;
  return t;
}

// The error bound of every approx key of row `a` against any row of `b`: b_max / b_min are the largest /
// smallest norms of b's rows (b_min only matters for cosine, where zero rows are rejected).
FPRT_HD double error_bound(int metric, double factor, int64_t dim, double a_norm, double a_sq, double b_max,
                           double b_min) {
  double scale = 1.0;
  if (metric == kInnerProduct) scale = a_norm * b_max;
  if (metric == kL2) scale = a_sq + b_max * b_max;
  return factor * scale + underflow_bound(metric, dim, a_norm, b_min);
}

// Nudge an upper bound up by a relative 1e-12 so that its own float64 rounding cannot under-cover.
FPRT_HD double widen_up(double x) { return x + fabs(x) * 1e-12 + 1e-300; }

// True when no item outside a full candidate list can enter the exact top-k. `last_approx` is the
// approx key of the worst candidate kept (every item not kept has approx <= it), `delta` the row's
// error bound, `rv_kth` the rank value of the k-th best candidate after the exact re-rank.
FPRT_HD bool certified(int metric, bool list_full, float last_approx, double delta, float rv_kth) {
  if (!list_full) return true;  // every item of the row is a candidate
  const double upper = widen_up(static_cast<double>(last_approx) + delta);
  return rank_value(metric, upper) < rv_kth;
}

// Every item that may tie or beat a k-th best with exact key `kth_key` has approx key >= this.
// (Keys whose rank value equals rv_kth lie within the float32 rounding interval around kth_key;
// the margin of a relative 2^-20 covers it with room to spare.)
FPRT_HD double band_threshold(int metric, double kth_key, double delta) {
  const double rel = 9.5367431640625e-07;  // 2^-20
  double margin;
  if (metric == kL2) {
    const double d = sqrt(kth_key < 0.0 ? -kth_key : 0.0);
    const double d_hi = d * (1.0 + rel) + 1e-30;
    margin = d_hi * d_hi - d * d;
  } else {
    margin = fabs(kth_key) * rel + 1e-37;
  }
  return kth_key - margin - widen_up(delta);
}

// ---------------------------------------------------------------------------------------------
// Re-rank and certificate of one candidate list, once its exact keys are known (the CUDA finalize
// kernels and the CPU module's topk_from_approx run exactly this).
//   cand_v / cand_i: the approx list (capacity cap, best first, kNoIndex-padded);
//   key: on entry key[p] = exact key of cand_i[p] for the filled slots; rv / id: scratch of cap entries;
//   out_v / out_i: the k reported values / indices, written when certified (or when the list is empty).
// Returns true when certified; otherwise *band gets the threshold of the exact band pass.
FPRT_HD bool finalize_list(int metric, const float* cand_v, const int64_t* cand_i, int cap, int k, double delta,
                           double* key, float* rv, int64_t* id, float* out_v, int64_t* out_i, double* band) {
  int cnt = 0;
  while (cnt < cap && cand_i[cnt] != kNoIndex) {
    rv[cnt] = rank_value(metric, key[cnt]);
    id[cnt] = cand_i[cnt];
    ++cnt;
  }
  sort_ranked(rv, id, key, cnt);
  *band = pos_inf_d();
  if (cnt == 0) {  // an empty group
    for (int p = 0; p < k; ++p) {
      out_v[p] = output_value(metric, neg_inf_f());
      out_i[p] = -1;
    }
    return true;
  }
  if (!certified(metric, cand_i[cap - 1] != kNoIndex, cand_v[cap - 1], delta, rv[k - 1])) {
    *band = band_threshold(metric, key[k - 1], delta);
    return false;
  }
  for (int p = 0; p < k; ++p) {
    out_v[p] = output_value(metric, rv[p]);
    out_i[p] = id[p];
  }
  return true;
}

// Where (val, id) goes in a sorted list of capacity k: the number of entries that rank before it
// (k: it does not enter). A warp computes it in parallel (one comparison per slot) and shifts the tail;
// the result equals topk_insert's.
FPRT_HD int topk_position(const float* vals, const int64_t* idx, int k, float val, int64_t id) {
  int n = 0;
  for (int p = 0; p < k; ++p) n += ranks_before(vals[p], idx[p], val, id) ? 1 : 0;
  return n;
}

}  // namespace fprt_sim
