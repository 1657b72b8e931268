// Where a packed tensor's pieces live (docs/image-format.md): each row's code
// words, its per-group scales and its outlier entries. Located once per
// matvec and shared by every optimised kernel, so they agree on the layout.
#pragma once

#include <cstdint>

#include "common/half.h"
#include "common/image_reader.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"

namespace qmc::kernels {

// __builtin_memcpy, not std::memcpy: -ffreestanding (the Cortex-M55 build)
// turns the latter into a library call per load.
inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// w = (code - zero) * scale over a group.
struct GroupScale {
  float scale;
  float zero;
};

// Group-affine: {fp16 scale, fp16 zero} per group.
inline GroupScale AffineScale(const uint8_t* row_scales, uint32_t group) {
  return {HalfToFloat(LoadU16(row_scales + group * 4u)), HalfToFloat(LoadU16(row_scales + group * 4u + 2u))};
}

// mxint4: E8M0 per block. Its codes are read with the sign bit flipped
// (kMxCodeFlip), which turns two's complement q into q + 8: an affine code
// with zero 8.
inline constexpr uint32_t kMxCodeFlip = 8;
inline GroupScale MxScale(const uint8_t* row_scales, uint32_t group) {
  return {quant::E8M0ToFloat(row_scales[group]), static_cast<float>(kMxCodeFlip)};
}

struct PackedTensor {
  PackedTensor(const image::ImageView& image, const image::TensorEntry& t)
      : words(reinterpret_cast<const uint32_t*>(image.blob(t.data).data())),
        words_per_row(quant::WordsPerRow(t.cols, t.bits, t.cell_bits)),
        scales(image.blob(t.scales).data()),
        scale_bytes_per_row(quant::GroupsPerRow(t.cols, t.group_size) *
                            (t.scheme == static_cast<uint8_t>(image::Scheme::kMxInt4) ? 1u : 4u)),
        outliers(t.outlier_count > 0 ? image.blob(t.outliers).data() : nullptr),
        rows(t.rows),
        cols(t.cols) {}

  const uint32_t* RowWords(uint32_t row) const { return words + static_cast<size_t>(row) * words_per_row; }
  const uint8_t* RowScales(uint32_t row) const { return scales + static_cast<size_t>(row) * scale_bytes_per_row; }

  // Σ value·x[col] over the row's outliers: the sparse correction added to
  // the inlier product (the inlier code at an outlier decodes to 0). An
  // entry whose column lies past the row (an MRAM read error; a validated
  // image has none) adds nothing, as in image::DequantizeRow.
  float OutlierDot(uint32_t row, const float* x) const {
    if (outliers == nullptr) return 0.0f;
    const uint32_t end = LoadU32(outliers + (row + 1u) * 4u);
    const uint8_t* entries = outliers + (rows + 1u) * 4u;
    float sum = 0.0f;
    for (uint32_t k = LoadU32(outliers + row * 4u); k < end; ++k) {
      const uint32_t col = LoadU16(entries + k * 4u);
      if (col < cols) sum += HalfToFloat(LoadU16(entries + k * 4u + 2u)) * x[col];
    }
    return sum;
  }

  const uint32_t* words;
  uint32_t words_per_row;
  const uint8_t* scales;
  uint32_t scale_bytes_per_row;
  const uint8_t* outliers;  // the CSR table, or nullptr without outliers
  uint32_t rows;
  uint32_t cols;
};

// A split tensor's pieces (common/split_layout.h), shared by every
// optimised kernel.
struct SplitTensor {
  SplitTensor(const image::ImageView& image, const image::TensorEntry& t)
      : inlier_words(reinterpret_cast<const uint32_t*>(image.blob(t.data).data())),
        index(image.blob(t.outliers).data()),
        bitmap(reinterpret_cast<const uint32_t*>(index + quant::SplitBitmapOffset(t.rows))),
        outlier_words(reinterpret_cast<const uint32_t*>(index + quant::SplitCodesOffset(t.rows, t.cols))),
        scales(image.blob(t.scales).data()),
        scale_bytes_per_row(quant::SplitScalePairsPerRow(t.cols, t.group_size) * 4u),
        bitmap_words(quant::BitmapWordsPerRow(t.cols)),
        cols(t.cols),
        inlier_word_count(quant::StreamWords(static_cast<uint64_t>(t.rows) * t.cols - t.outlier_count, t.bits,
                                             t.cell_bits)),
        outlier_word_count(quant::StreamWords(t.outlier_count, t.outlier_bits, 1)) {}

  const uint32_t* RowBitmap(uint32_t row) const { return bitmap + static_cast<size_t>(row) * bitmap_words; }
  // Pair 0 is the outliers' scale, pairs 1.. the inlier groups'.
  const uint8_t* RowScales(uint32_t row) const { return scales + static_cast<size_t>(row) * scale_bytes_per_row; }
  uint64_t OutlierFirst(uint32_t row) const { return LoadU32(index + row * 4u); }
  uint64_t InlierFirst(uint32_t row) const { return static_cast<uint64_t>(row) * cols - OutlierFirst(row); }
  // The bits of bitmap word `w` that are columns of the row.
  uint32_t ColumnMask(uint32_t w) const {
    return w + 1u == bitmap_words && cols % 32u != 0 ? (1u << (cols % 32u)) - 1u : ~0u;
  }

  const uint32_t* inlier_words;
  const uint8_t* index;
  const uint32_t* bitmap;
  const uint32_t* outlier_words;
  const uint8_t* scales;
  uint32_t scale_bytes_per_row;
  uint32_t bitmap_words;
  uint32_t cols;
  uint64_t inlier_word_count;   // the streams' lengths, which clamped reads stay within
  uint64_t outlier_word_count;
};

}  // namespace qmc::kernels
