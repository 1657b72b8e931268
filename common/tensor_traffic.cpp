#include "common/tensor_traffic.h"

#include <cstring>

#include "common/quant_layout.h"
#include "common/split_layout.h"

namespace qmc {
namespace {

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 32-bit words codes [begin, end) of a b-bit stream in c-bit cells touch.
uint64_t WordsTouched(uint64_t begin, uint64_t end, uint32_t bits, uint32_t cell_bits) {
  if (end <= begin) return 0;
  const uint64_t bits_per_word = static_cast<uint64_t>(quant::CellsPerWord(cell_bits)) * cell_bits;
  return (end * bits + bits_per_word - 1) / bits_per_word - begin * bits / bits_per_word;
}

void AddBlob(const image::ImageView& image, const image::BlobRef& ref, uint64_t bytes, ReadCounter& counter) {
  if (ref.section == image::kNoSection || bytes == 0) return;
  counter.Read(static_cast<image::Window>(image.section(ref.section).window), bytes);
}

}  // namespace

void AddRowTraffic(const image::ImageView& image, const image::TensorEntry& t, uint32_t first_row, uint32_t rows,
                   ReadCounter& counter) {
  if (rows == 0) return;
  const uint64_t n = rows;
  const uint32_t end_row = first_row + rows;
  switch (static_cast<image::Scheme>(t.scheme)) {
    case image::Scheme::kF32:
      AddBlob(image, t.data, n * t.cols * 4u, counter);
      return;
    case image::Scheme::kF16:
      AddBlob(image, t.data, n * t.cols * 2u, counter);
      return;
    case image::Scheme::kGroupAffine: {
      AddBlob(image, t.data, n * quant::WordsPerRow(t.cols, t.bits, t.cell_bits) * 4u, counter);
      AddBlob(image, t.scales, n * quant::GroupsPerRow(t.cols, t.group_size) * 4u, counter);
      if (t.outlier_count == 0) return;
      const uint8_t* row_start = image.blob(t.outliers).data();
      const uint64_t entries = LoadU32(row_start + end_row * 4u) - LoadU32(row_start + first_row * 4u);
      AddBlob(image, t.outliers, (n + 1u) * 4u + entries * sizeof(image::OutlierEntry), counter);
      return;
    }
    case image::Scheme::kMxInt4:
      AddBlob(image, t.data, n * quant::WordsPerRow(t.cols, t.bits, t.cell_bits) * 4u, counter);
      AddBlob(image, t.scales, n * quant::GroupsPerRow(t.cols, t.group_size), counter);
      return;
    case image::Scheme::kSplit: {
      const uint8_t* row_start = image.blob(t.outliers).data();
      const uint64_t outliers_begin = LoadU32(row_start + first_row * 4u);
      const uint64_t outliers_end = LoadU32(row_start + end_row * 4u);
      const uint64_t inliers_begin = static_cast<uint64_t>(first_row) * t.cols - outliers_begin;
      const uint64_t inliers_end = static_cast<uint64_t>(end_row) * t.cols - outliers_end;
      AddBlob(image, t.data, WordsTouched(inliers_begin, inliers_end, t.bits, t.cell_bits) * 4u, counter);
      AddBlob(image, t.scales, n * quant::SplitScalePairsPerRow(t.cols, t.group_size) * 4u, counter);
      AddBlob(image, t.outliers,
              (n + 1u) * 4u + n * quant::BitmapWordsPerRow(t.cols) * 4u +
                  WordsTouched(outliers_begin, outliers_end, t.outlier_bits, 1u) * 4u,
              counter);
      return;
    }
  }
}

}  // namespace qmc
