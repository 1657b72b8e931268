// The split scheme (Scheme::kSplit, docs/image-format.md): the QMC paper's
// layout. Outliers are a bitmap plus quantized codes in MRAM, inliers a
// compact stream of codes in ReRAM holding only the non-outlier weights.
//
//   data     (ReRAM) the tensor's inlier codes, row-major and in column
//            order, as ONE code stream: inlier k at stream bits [k·b, k·b+b),
//            packed into c-bit cells and 32-bit words (common/quant_layout.h).
//   scales   (MRAM)  per row: the outliers' {fp16 scale, fp16 zero}, then one
//            pair per group of `group_size` consecutive inliers, for
//            ceil(cols / group_size) groups (pairs past the row's inliers are 0).
//   outliers (MRAM)  u32 row_start[rows + 1] (outliers before each row), then a
//            bitmap of ceil(cols/32) u32 words per row (bit c%32 of word c/32
//            set: column c is an outlier), then the outlier codes as one
//            stream of `outlier_bits`-bit codes in 32-bit words.
//
// Row r's inliers start at code r·cols − row_start[r] of the inlier stream,
// its outliers at code row_start[r] of the outlier stream: the only index is
// one u32 per row.
#pragma once

#include <cstdint>

#include "common/quant_layout.h"

namespace qmc::quant {

inline constexpr uint32_t kMinOutlierBits = 4;
inline constexpr uint32_t kMaxOutlierBits = 8;

constexpr uint32_t BitmapWordsPerRow(uint32_t cols) { return (cols + 31u) / 32u; }

// {scale, zero} pairs per row: the outliers' first, then the inlier groups'.
constexpr uint32_t SplitScalePairsPerRow(uint32_t cols, uint32_t group_size) {
  return 1u + GroupsPerRow(cols, group_size);
}

constexpr uint64_t SplitScalesBytes(uint32_t rows, uint32_t cols, uint32_t group_size) {
  return static_cast<uint64_t>(rows) * SplitScalePairsPerRow(cols, group_size) * 4u;
}

constexpr uint64_t SplitDataBytes(uint32_t rows, uint32_t cols, uint64_t outlier_count, uint32_t bits,
                                  uint32_t cell_bits) {
  return StreamWords(static_cast<uint64_t>(rows) * cols - outlier_count, bits, cell_bits) * 4u;
}

// Byte offsets inside the outliers blob.
constexpr uint64_t SplitBitmapOffset(uint32_t rows) { return (static_cast<uint64_t>(rows) + 1u) * 4u; }
constexpr uint64_t SplitCodesOffset(uint32_t rows, uint32_t cols) {
  return SplitBitmapOffset(rows) + static_cast<uint64_t>(rows) * BitmapWordsPerRow(cols) * 4u;
}
constexpr uint64_t SplitOutliersBytes(uint32_t rows, uint32_t cols, uint64_t outlier_count, uint32_t outlier_bits) {
  return SplitCodesOffset(rows, cols) + StreamWords(outlier_count, outlier_bits, 1u) * 4u;
}

}  // namespace qmc::quant
