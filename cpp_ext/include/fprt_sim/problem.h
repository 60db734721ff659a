// fprt similarity: host-side description of one reduction call, shared by the CPU and CUDA drivers.
#pragma once

#include <cstdint>

namespace fprt_sim {

// Counts of lists whose certificate failed and that went through the exact band pass.
struct Rechecks {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group_cells = 0;
};

}  // namespace fprt_sim
