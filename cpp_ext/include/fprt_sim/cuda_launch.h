// fprt similarity, CUDA: the kernel launchers (csrc/cuda/kernels.cu) called by the host driver
// (csrc/cuda/similarity_cuda.cpp). Raw pointers and a stream only, so the .cu needs no torch headers
// and nvcc stays fast. All launches are asynchronous on `stream` (the torch current stream).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fprt_sim {
namespace cuda {

enum class DType : int { kFloat = 0, kHalf = 1, kBFloat16 = 2 };

// Per input row: sq = exact |x|^2, norm = sqrt(sq), aux = 1/norm (cosine) or (float)sq (L2).
void launch_norms(DType t, const void* x, int64_t rows, int64_t dim, int metric, double* sq, double* norm, float* aux,
                  cudaStream_t stream);

// Tile of raw dot products (m x n, row-major) -> approx keys in place.
void launch_to_keys(int metric, float* c, int64_t m, int64_t n, const float* a_aux, const float* b_aux,
                    cudaStream_t stream);

// Fold a tile into the row candidate lists (rv/ri: M x kr, rows i0.., columns j0..) and, when G > 0, the
// per-(row, group) lists (gv/gi: M x G x gp; groups: database labels by global index). One warp per row;
// lists in shared memory up to smem_limit bytes per block, else in place in global memory (any k).
void launch_row_scan(const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, float* rv, int64_t* ri, int kr,
                     float* gv, int64_t* gi, int64_t G, int gp, const int64_t* groups, int64_t smem_limit,
                     cudaStream_t stream);

// Fold a tile into the column candidate lists (cv/ci: N x kc). One thread per (column, slab of rows);
// scratch lists hold (slabs - 1) x n x kc entries (fprt_sim::plan::col_slabs).
void launch_col_scan(const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, float* cv, int64_t* ci, int kc,
                     float* scratch_v, int64_t* scratch_i, int64_t slabs, cudaStream_t stream);

// Moments of the tile's reported values merged into row_mom (M x 5) and col_mom (N x 5, may be null;
// scratch: slabs x n x 5 doubles).
void launch_tile_stats(int metric, const float* c, int64_t m, int64_t n, int64_t i0, int64_t j0, double* row_mom,
                       double* col_mom, double* scratch, int64_t slabs, cudaStream_t stream);

// A deliberate device fault (__trap), for the test of fault reporting (FPRT_CUDA_FAULT_INJECT).
void launch_fault(cudaStream_t stream);

// Initialise candidate lists (value -inf, index kNoIndex) and moments (empty).
void launch_init_lists(float* v, int64_t* ix, int64_t count, cudaStream_t stream);
void launch_init_moments(double* mom, int64_t rows, cudaStream_t stream);

// Exact re-rank in two steps, so a streamed database is read chunk by chunk (never gathered whole):
// launch_candidate_keys: exact keys (key: nlists x cap) of the candidate slots whose index lies in
// [b_off, b_off + nb) (side b rows b_off.. at b_rows); list l belongs to row l / per_row of side a.
// launch_finalize_keys: per list, sort + certificate (fprt_sim::finalize_list with the error bound of
// fprt_sim::error_bound): the k best into out_v/out_i (nlists x k) when certified; otherwise failed[l] = 1
// and thr[l] = band threshold. Empty lists (no candidate) give -inf (or +inf distance) and index -1.
void launch_candidate_keys(DType t, int metric, const void* a, const double* a_norm, const void* b_rows, int64_t b_off,
                           int64_t nb, const double* b_norm, int64_t dim, int64_t nlists, int per_row, int cap,
                           const int64_t* cand_i, double* key, cudaStream_t stream);
void launch_finalize_keys(int metric, const double* a_norm, const double* a_sq, int64_t dim, int64_t nlists, int per_row,
                          int cap, int k, const float* cand_v, const int64_t* cand_i, double* key, double factor,
                          double b_max, double b_min, float* out_v, int64_t* out_i, uint8_t* failed, double* thr,
                          float* scratch_rv, int64_t* scratch_id, cudaStream_t stream);

// Exact band pass over one tile of approx keys of gathered rows (a_g: nf x dim, their norms a_norm_g)
// against database rows b (columns j0.., global index; b_norm global): every element with key >= thr[f]
// (or >= gthr[f * G + group]) gets its exact key and enters out (nf x k) / gout (nf x G, best only).
void launch_band(DType t, int metric, const float* c, int64_t m, int64_t n, int64_t f0, int64_t j0, const void* a_g,
                 const double* a_norm_g, const void* b_chunk, int64_t b_chunk_offset, const double* b_norm, int64_t dim,
                 const double* thr, int k, float* out_rv, int64_t* out_id, const int64_t* groups, int64_t G,
                 const double* gthr, float* gout_rv, int64_t* gout_id, cudaStream_t stream);

// Rank values -> reported values (L2: distances) for band outputs; -1 for empty slots.
void launch_band_output(int metric, float* rv, int64_t* id, int64_t count, cudaStream_t stream);

}  // namespace cuda
}  // namespace fprt_sim
