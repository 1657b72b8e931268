// A split row's x, separated by the row's outlier bitmap (common/split_layout.h)
// so the vector kernels can dot each code stream with contiguous x: the
// inliers' x in column order at buffer[0, inliers), the outliers' x in
// reverse column order at buffer[inliers, cols), i.e. outlier j's x at
// buffer[cols − 1 − j]. Both fit in the cols floats of MatVec's row buffer.
//
// Eight columns (one bitmap byte) at a time: one permutation (the byte's
// SplitChunk order) puts the inlier lanes first and the outlier lanes last,
// reversed, and the same 8 floats are stored at the inliers' next free slot
// and ending at the outliers' last free slot. Each store's other lanes land
// in the gap between the two regions, which is at least 8 floats wide while
// 8 more columns follow; the last 1 to 15 columns store only the lanes
// that belong (masked or predicated stores).
//
// Whatever the bitmap holds (MRAM bit errors corrupt it at run time), a
// chunk of n columns advances the two regions by n together, so every store
// stays inside buffer[0, cols): a corrupt bitmap misplaces x values but
// never writes outside the buffer. Bits past the last column are never read.
#pragma once

#include <cstdint>

namespace qmc::kernels {

// How the 8 columns of one bitmap byte split.
struct SplitChunk {
  uint8_t order[8];  // lane indices: the inliers (clear bits) ascending, then the outliers descending
  intptr_t inliers;  // clear bits; pointer-sized, as it advances a pointer
};

struct SplitChunks {
  SplitChunk byte[256];
};

constexpr SplitChunks MakeSplitChunks() {
  SplitChunks chunks{};
  for (uint32_t m = 0; m < 256; ++m) {
    SplitChunk& chunk = chunks.byte[m];
    uint32_t next = 0;
    for (uint32_t i = 0; i < 8; ++i) {
      if (((m >> i) & 1u) == 0) chunk.order[next++] = static_cast<uint8_t>(i);
    }
    chunk.inliers = next;
    for (uint32_t i = 8; i-- > 0;) {
      if ((m >> i) & 1u) chunk.order[next++] = static_cast<uint8_t>(i);
    }
  }
  return chunks;
}

inline constexpr SplitChunks kSplitChunks = MakeSplitChunks();

}  // namespace qmc::kernels
