// fprt similarity: host-side planning shared by the CPU and CUDA drivers (tile sizes, kernel shapes,
// streaming chunks). Plain C++, no CUDA: the CPU module exposes every function here to Python
// (fprt._similarity_cpu.plan_*), so the CPU tests check the very numbers the GPU driver uses.
#pragma once

#include <algorithm>
#include <cstdint>

namespace fprt_sim {
namespace plan {

// Tile defaults and caps. A requested tile is clamped to the problem (a 65536 x 65536 tile for a
// 10 x 10 problem is a 10 x 10 tile) and to a cap that bounds the tile buffer (CPU: 64 MiB per thread,
// GPU: 256 MiB).
constexpr int64_t kCpuMaxTileM = 4096, kCpuMaxTileN = 4096;
constexpr int64_t kGpuDefaultTileM = 2048, kGpuDefaultTileN = 4096;
constexpr int64_t kGpuMaxTileM = 8192, kGpuMaxTileN = 8192;

inline int64_t clamp_tile(int64_t requested, int64_t fallback, int64_t extent, int64_t cap) {
  const int64_t t = requested > 0 ? requested : fallback;
  return std::max<int64_t>(1, std::min({t, extent, cap}));
}

// CPU query block: the request, else 512 rows (fewer when M is small, so that every thread gets
// several blocks to pull); database tile: the request, else 512.
struct Tiles {
  int64_t tm, tn;
};

inline Tiles cpu_tiles(int64_t M, int64_t N, int64_t tile_m, int64_t tile_n, int threads) {
  const int64_t t = std::max(1, threads);
  const int64_t auto_m = std::clamp<int64_t>((M + 4 * t - 1) / (4 * t), std::min<int64_t>(32, M), 512);
  return Tiles{clamp_tile(tile_m, auto_m, M, kCpuMaxTileM), clamp_tile(tile_n, 512, N, kCpuMaxTileN)};
}

inline Tiles gpu_tiles(int64_t M, int64_t N, int64_t tile_m, int64_t tile_n) {
  return Tiles{clamp_tile(tile_m, kGpuDefaultTileM, M, kGpuMaxTileM), clamp_tile(tile_n, kGpuDefaultTileN, N, kGpuMaxTileN)};
}

// CPU scheduling: threads pull work units (query blocks) from a counter. Without statistics every block
// is its own unit (a thread idles at most one block at the end); with statistics each unit keeps
// per-column moments (N x 40 bytes), so there are only as many units as fit 64 MiB of them, but never
// fewer than 4 per thread (the earlier fixed count). Returns the number of units (blocks spread evenly).
inline int64_t cpu_work_units(int64_t blocks, int64_t N, bool stats, int threads) {
  if (!stats) return blocks;
  const int64_t by_memory = std::max<int64_t>(1, (int64_t{64} << 20) / std::max<int64_t>(1, N * 40));
  return std::min<int64_t>(blocks, std::max<int64_t>(by_memory, std::min<int64_t>(blocks, 4 * std::max(1, threads))));
}

// GPU row scan: one warp per row, its candidate list of kr entries (12 bytes each) in shared memory while
// they fit (warps per block halved down to 1), else in global memory in place. Insertions are
// warp-parallel (topk_position + a parallel shift) from 64 entries on; below, lane 0 inserts.
struct RowScan {
  int warps_per_block;
  bool shared;
  bool warp_insert;
  int64_t smem_bytes;
};

inline RowScan row_scan(int64_t kr, int64_t smem_limit) {
  const int64_t per_warp = kr * 12;
  int wpb = 8;
  while (wpb > 1 && per_warp * wpb > smem_limit) wpb /= 2;
  const bool shared = per_warp * wpb <= smem_limit;
  return RowScan{shared ? wpb : 8, shared, kr >= 64, shared ? per_warp * wpb : 0};
}

// GPU column scan / column statistics: a thread per (column, slab of rows). One thread per column walking
// a 2048-row tile gives 16 blocks on 132 SMs; the rows are cut into slabs (at least 64 rows each) until
// there are ~4 blocks per SM, and the per-slab partial lists / moments are merged in slab order.
inline int64_t col_slabs(int64_t m, int64_t n, int sm_count, int threads_per_block = 256) {
  const int64_t col_blocks = std::max<int64_t>(1, (n + threads_per_block - 1) / threads_per_block);
  const int64_t want = (4 * std::max(1, sm_count) + col_blocks - 1) / col_blocks;
  return std::max<int64_t>(1, std::min<int64_t>(want, m / 64));
}

// Streaming a host database: rows per chunk. Two device buffers (one being filled by the copy stream
// while the other is read) and two pinned host buffers of this size: each at most 20 % of the free device
// memory and 512 MiB (pinned host memory is scarce; larger chunks do not overlap better), in whole database
// tiles; FPRT_CUDA_CHUNK_ROWS (env_rows > 0) forces a size (tests).
inline int64_t stream_chunk_rows(int64_t N, int64_t row_bytes, int64_t free_bytes, int64_t tile_n, int64_t env_rows) {
  if (env_rows > 0) return std::min(N, env_rows);
  const double budget = std::min(0.2 * static_cast<double>(free_bytes), 512.0 * 1024 * 1024);
  int64_t rows = static_cast<int64_t>(budget) / std::max<int64_t>(row_bytes, 1);
  rows = std::max<int64_t>(tile_n, rows / std::max<int64_t>(tile_n, 1) * tile_n);
  return std::min(N, rows);
}

}  // namespace plan
}  // namespace fprt_sim
