// The paper's QMC split (Scheme::kSplit, common/split_layout.h): the top-ρ
// weights by |w| are outliers, quantized per row to `outlier_bits` with an
// MSE-searched scale; the rest are inliers, quantized per group of
// consecutive inliers (per row by default) with the noise-aware scale.
#include <cstring>

#include "common/half.h"
#include "common/split_layout.h"
#include "host/quantize.h"

namespace qmc::host {
namespace {

void AppendU32(std::vector<uint8_t>& out, uint32_t v) {
  uint8_t bytes[4];
  std::memcpy(bytes, &v, 4);
  out.insert(out.end(), bytes, bytes + 4);
}

void AppendWords(std::vector<uint8_t>& out, const std::vector<uint32_t>& words) {
  const size_t at = out.size();
  out.resize(at + words.size() * 4u);
  std::memcpy(out.data() + at, words.data(), words.size() * 4u);
}

void PutPair(std::vector<uint8_t>& scales, size_t pair, const AffineFit& fit) {
  std::memcpy(scales.data() + pair * 4u, &fit.scale, 2);
  std::memcpy(scales.data() + pair * 4u + 2u, &fit.zero, 2);
}

}  // namespace

QuantizedTensor QuantizeSplit(const Tensor& tensor, const QuantOptions& options) {
  const uint32_t rows = tensor.rows, cols = tensor.cols;
  const uint32_t group = options.group_size == kPerChannel ? cols : options.group_size;
  const uint32_t inlier_max = (1u << options.bits) - 1u;
  const uint32_t outlier_max = (1u << options.outlier_bits) - 1u;
  const uint32_t bitmap_words = quant::BitmapWordsPerRow(cols);
  const uint32_t pairs_per_row = quant::SplitScalePairsPerRow(cols, group);

  std::vector<bool> is_outlier(tensor.data.size(), false);
  const std::vector<uint32_t> outlier_index = SelectOutliers(tensor, options.outlier_ratio, options.balance);
  for (uint32_t i : outlier_index) is_outlier[i] = true;
  const uint64_t outlier_count = outlier_index.size();
  const uint64_t inlier_count = tensor.data.size() - outlier_count;

  QuantizedTensor q;
  q.scheme = image::Scheme::kSplit;
  q.bits = static_cast<uint8_t>(options.bits);
  q.cell_bits = static_cast<uint8_t>(options.cell_bits);
  q.outlier_bits = static_cast<uint8_t>(options.outlier_bits);
  q.group_size = static_cast<uint16_t>(group);
  q.outlier_count = static_cast<uint32_t>(outlier_count);
  q.reconstruction.resize(tensor.data.size());
  q.scales.assign(quant::SplitScalesBytes(rows, cols, group), 0);
  std::vector<uint32_t> inlier_words(quant::StreamWords(inlier_count, options.bits, options.cell_bits), 0u);
  std::vector<uint32_t> outlier_words(quant::StreamWords(outlier_count, options.outlier_bits, 1), 0u);
  std::vector<uint32_t> bitmap(static_cast<size_t>(rows) * bitmap_words, 0u);
  std::vector<uint32_t> row_start(rows + 1u, 0u);

  std::vector<float> inliers, outliers;
  std::vector<uint32_t> inlier_cols, outlier_cols;
  uint64_t next_inlier = 0, next_outlier = 0;
  for (uint32_t r = 0; r < rows; ++r) {
    const float* w = tensor.data.data() + static_cast<size_t>(r) * cols;
    float* rec = q.reconstruction.data() + static_cast<size_t>(r) * cols;
    inliers.clear(), outliers.clear(), inlier_cols.clear(), outlier_cols.clear();
    for (uint32_t c = 0; c < cols; ++c) {
      if (is_outlier[static_cast<size_t>(r) * cols + c]) {
        outliers.push_back(w[c]);
        outlier_cols.push_back(c);
        bitmap[static_cast<size_t>(r) * bitmap_words + c / 32u] |= 1u << (c % 32u);
      } else {
        inliers.push_back(w[c]);
        inlier_cols.push_back(c);
      }
    }
    row_start[r] = static_cast<uint32_t>(next_outlier);
    const size_t first_pair = static_cast<size_t>(r) * pairs_per_row;

    const AffineFit outlier_fit =
        FitAffine(outliers.data(), static_cast<uint32_t>(outliers.size()), outlier_max, kOutlierGrid, 0.0);
    PutPair(q.scales, first_pair, outlier_fit);
    for (size_t k = 0; k < outliers.size(); ++k) {
      const uint32_t code = AffineCode(outliers[k], outlier_fit, outlier_max);
      quant::WriteCode(outlier_words.data(), next_outlier++, code, options.outlier_bits, 1);
      rec[outlier_cols[k]] = quant::DequantGroupAffine(code, outlier_fit.scale, outlier_fit.zero);
    }

    for (size_t begin = 0, g = 0; begin < inliers.size(); begin += group, ++g) {
      const auto n = static_cast<uint32_t>(std::min<size_t>(group, inliers.size() - begin));
      const AffineFit fit = FitAffine(inliers.data() + begin, n, inlier_max, kInlierGrid, options.inlier_noise);
      PutPair(q.scales, first_pair + 1u + g, fit);
      for (size_t k = begin; k < begin + n; ++k) {
        const uint32_t code = AffineCode(inliers[k], fit, inlier_max);
        quant::WriteCode(inlier_words.data(), next_inlier++, code, options.bits, options.cell_bits);
        rec[inlier_cols[k]] = quant::DequantGroupAffine(code, fit.scale, fit.zero);
      }
    }
  }
  row_start[rows] = static_cast<uint32_t>(next_outlier);

  q.data.resize(inlier_words.size() * 4u);
  if (!inlier_words.empty()) std::memcpy(q.data.data(), inlier_words.data(), q.data.size());
  q.outliers.reserve(quant::SplitOutliersBytes(rows, cols, outlier_count, options.outlier_bits));
  for (uint32_t s : row_start) AppendU32(q.outliers, s);
  AppendWords(q.outliers, bitmap);
  AppendWords(q.outliers, outlier_words);
  return q;
}

}  // namespace qmc::host
