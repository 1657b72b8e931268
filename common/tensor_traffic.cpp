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

}  // namespace

BlobTraffic RowBlobTraffic(const image::TensorEntry& t, uint32_t first_row, uint32_t rows,
                           uint64_t outliers_before_first, uint64_t outliers_before_end) {
  BlobTraffic out;
  if (rows == 0) return out;
  const uint64_t n = rows;
  const uint32_t end_row = first_row + rows;
  switch (static_cast<image::Scheme>(t.scheme)) {
    case image::Scheme::kF32:
      out.data = n * t.cols * 4u;
      break;
    case image::Scheme::kF16:
      out.data = n * t.cols * 2u;
      break;
    case image::Scheme::kGroupAffine:
      out.data = n * quant::WordsPerRow(t.cols, t.bits, t.cell_bits) * 4u;
      out.scales = n * quant::GroupsPerRow(t.cols, t.group_size) * 4u;
      if (t.outlier_count != 0) {
        out.outliers = (n + 1u) * 4u + (outliers_before_end - outliers_before_first) * sizeof(image::OutlierEntry);
      }
      break;
    case image::Scheme::kMxInt4:
      out.data = n * quant::WordsPerRow(t.cols, t.bits, t.cell_bits) * 4u;
      out.scales = n * quant::GroupsPerRow(t.cols, t.group_size);
      break;
    case image::Scheme::kSplit: {
      const uint64_t inliers_begin = static_cast<uint64_t>(first_row) * t.cols - outliers_before_first;
      const uint64_t inliers_end = static_cast<uint64_t>(end_row) * t.cols - outliers_before_end;
      out.data = WordsTouched(inliers_begin, inliers_end, t.bits, t.cell_bits) * 4u;
      out.scales = n * quant::SplitScalePairsPerRow(t.cols, t.group_size) * 4u;
      out.outliers = (n + 1u) * 4u + n * quant::BitmapWordsPerRow(t.cols) * 4u +
                     WordsTouched(outliers_before_first, outliers_before_end, t.outlier_bits, 1u) * 4u;
      break;
    }
  }
  return out;
}

namespace {

void AddBlob(const image::ImageView& image, const image::BlobRef& ref, uint64_t bytes, ReadCounter& counter) {
  if (ref.section == image::kNoSection || bytes == 0) return;
  counter.Read(static_cast<image::Window>(image.section(ref.section).window), bytes);
}

}  // namespace

void AddRowTraffic(const image::ImageView& image, const image::TensorEntry& t, uint32_t first_row, uint32_t rows,
                   ReadCounter& counter) {
  if (rows == 0) return;
  uint64_t before_first = 0, before_end = 0;
  const bool has_row_table = t.scheme == static_cast<uint8_t>(image::Scheme::kSplit) ||
                             (t.scheme == static_cast<uint8_t>(image::Scheme::kGroupAffine) && t.outlier_count != 0);
  if (has_row_table) {
    const uint8_t* row_start = image.blob(t.outliers).data();
    before_first = LoadU32(row_start + first_row * 4u);
    before_end = LoadU32(row_start + (first_row + rows) * 4u);
  }
  const BlobTraffic bytes = RowBlobTraffic(t, first_row, rows, before_first, before_end);
  AddBlob(image, t.data, bytes.data, counter);
  AddBlob(image, t.scales, bytes.scales, counter);
  AddBlob(image, t.outliers, bytes.outliers, counter);
}

}  // namespace qmc
