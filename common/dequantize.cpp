#include "common/dequantize.h"

#include <cstring>

#include "common/half.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"

namespace qmc::image {
namespace {

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The split scheme (common/split_layout.h): walk the row's bitmap, taking
// the next outlier code where a bit is set and the next inlier code elsewhere.
void DequantizeSplitRow(const ImageView& image, const TensorEntry& t, uint32_t row, float* out) {
  const uint8_t* index = image.blob(t.outliers).data();
  const uint32_t* bitmap = reinterpret_cast<const uint32_t*>(index + quant::SplitBitmapOffset(t.rows)) +
                           static_cast<size_t>(row) * quant::BitmapWordsPerRow(t.cols);
  const auto* outlier_words = reinterpret_cast<const uint32_t*>(index + quant::SplitCodesOffset(t.rows, t.cols));
  const auto* inlier_words = reinterpret_cast<const uint32_t*>(image.blob(t.data).data());
  const uint8_t* row_scales = image.blob(t.scales).data() +
                              static_cast<size_t>(row) * quant::SplitScalePairsPerRow(t.cols, t.group_size) * 4u;
  const uint64_t outlier_first = LoadU32(index + row * 4u);
  const uint64_t inlier_first = static_cast<uint64_t>(row) * t.cols - outlier_first;
  uint32_t inliers = 0, outliers = 0;
  for (uint32_t c = 0; c < t.cols; ++c) {
    if ((bitmap[c / 32u] >> (c % 32u)) & 1u) {
      const uint32_t code = quant::ReadCode(outlier_words, outlier_first + outliers++, t.outlier_bits, 1);
      out[c] = quant::DequantGroupAffine(code, LoadU16(row_scales), LoadU16(row_scales + 2));
    } else {
      const uint8_t* pair = row_scales + (1u + inliers / t.group_size) * 4u;
      const uint32_t code = quant::ReadCode(inlier_words, inlier_first + inliers++, t.bits, t.cell_bits);
      out[c] = quant::DequantGroupAffine(code, LoadU16(pair), LoadU16(pair + 2));
    }
  }
}

}  // namespace

void DequantizeRow(const ImageView& image, const TensorEntry& t, uint32_t row, float* out) {
  const uint8_t* data = image.blob(t.data).data();
  switch (static_cast<Scheme>(t.scheme)) {
    case Scheme::kF32:
      std::memcpy(out, data + static_cast<size_t>(row) * t.cols * 4u, t.cols * 4u);
      return;
    case Scheme::kF16:
      for (uint32_t c = 0; c < t.cols; ++c) out[c] = HalfToFloat(LoadU16(data + (static_cast<size_t>(row) * t.cols + c) * 2u));
      return;
    case Scheme::kSplit: return DequantizeSplitRow(image, t, row, out);
    case Scheme::kGroupAffine:
    case Scheme::kMxInt4: break;
  }

  const auto* words = reinterpret_cast<const uint32_t*>(data) +
                      static_cast<size_t>(row) * quant::WordsPerRow(t.cols, t.bits, t.cell_bits);
  const uint32_t groups = quant::GroupsPerRow(t.cols, t.group_size);
  const uint8_t* scales = image.blob(t.scales).data();
  if (t.scheme == static_cast<uint8_t>(Scheme::kMxInt4)) {
    const uint8_t* row_scales = scales + static_cast<size_t>(row) * groups;
    for (uint32_t c = 0; c < t.cols; ++c) {
      out[c] = quant::DequantMxInt4(quant::ReadCode(words, c, t.bits, t.cell_bits), row_scales[c / t.group_size]);
    }
    return;
  }

  const uint8_t* row_scales = scales + static_cast<size_t>(row) * groups * 4u;
  for (uint32_t c = 0; c < t.cols; ++c) {
    const uint8_t* pair = row_scales + (c / t.group_size) * 4u;
    out[c] = quant::DequantGroupAffine(quant::ReadCode(words, c, t.bits, t.cell_bits), LoadU16(pair), LoadU16(pair + 2));
  }
  if (t.outlier_count == 0) return;
  const uint8_t* csr = image.blob(t.outliers).data();
  const uint32_t begin = LoadU32(csr + row * 4u);
  const uint32_t end = LoadU32(csr + (row + 1u) * 4u);
  const uint8_t* entries = csr + (t.rows + 1u) * 4u;
  // A column past the row can only be an MRAM read error (a validated image
  // has none): that entry adds nothing.
  for (uint32_t k = begin; k < end; ++k) {
    const uint32_t col = LoadU16(entries + k * 4u);
    if (col < t.cols) out[col] += HalfToFloat(LoadU16(entries + k * 4u + 2u));
  }
}

}  // namespace qmc::image
