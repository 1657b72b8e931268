// The paper's QMC split (Scheme::kSplit, common/split_layout.h): the top-ρ
// weights by |w| are outliers, quantized per row to `outlier_bits` with an
// MSE-searched scale; the rest are inliers, quantized per group of
// consecutive inliers (per row by default) with the noise-aware scale.
#include <algorithm>
#include <cstring>

#include "common/half.h"
#include "common/split_layout.h"
#include "host/code_stream.h"
#include "host/parallel_rows.h"
#include "host/quantize.h"

namespace qmc::host {
namespace {

void AppendU32(std::vector<uint8_t>& out, uint32_t v) {
  uint8_t bytes[4];
  std::memcpy(bytes, &v, 4);
  out.insert(out.end(), bytes, bytes + 4);
}

void AppendWords(std::vector<uint8_t>& out, const std::vector<uint32_t>& words) {
  if (words.empty()) return;  // memcpy from an empty vector's null data() is undefined
  const size_t at = out.size();
  out.resize(at + words.size() * 4u);
  std::memcpy(out.data() + at, words.data(), words.size() * 4u);
}

void PutPair(std::vector<uint8_t>& scales, size_t pair, const AffineFit& fit) {
  std::memcpy(scales.data() + pair * 4u, &fit.scale, 2);
  std::memcpy(scales.data() + pair * 4u + 2u, &fit.zero, 2);
}

}  // namespace

SplitCodes FitSplit(const Tensor& tensor, const QuantOptions& options) {
  const uint32_t rows = tensor.rows, cols = tensor.cols;
  const uint32_t group = options.group_size == kPerChannel ? cols : options.group_size;
  const uint32_t inlier_max = (1u << options.bits) - 1u;
  const uint32_t outlier_max = (1u << options.outlier_bits) - 1u;
  const uint32_t pairs_per_row = quant::SplitScalePairsPerRow(cols, group);

  SplitCodes split;
  split.is_outlier.assign(tensor.data.size(), false);
  for (uint32_t i : SelectOutliers(tensor, options.outlier_ratio, options.balance)) split.is_outlier[i] = true;
  split.fits.resize(static_cast<size_t>(rows) * pairs_per_row);
  split.codes.resize(tensor.data.size());

  ForRowRanges(rows, tensor.data.size(), [&](uint32_t row_begin, uint32_t row_end) {
    std::vector<float> inliers, outliers;
    std::vector<uint32_t> inlier_cols, outlier_cols;
    std::vector<uint8_t> codes(cols);
    for (uint32_t r = row_begin; r < row_end; ++r) {
      const size_t base = static_cast<size_t>(r) * cols;
      inliers.clear(), outliers.clear(), inlier_cols.clear(), outlier_cols.clear();
      for (uint32_t c = 0; c < cols; ++c) {
        (split.is_outlier[base + c] ? outliers : inliers).push_back(tensor.data[base + c]);
        (split.is_outlier[base + c] ? outlier_cols : inlier_cols).push_back(c);
      }
      AffineFit* fits = split.fits.data() + static_cast<size_t>(r) * pairs_per_row;
      const auto outlier_count = static_cast<uint32_t>(outliers.size());
      fits[0] = FitAffine(outliers.data(), outlier_count, outlier_max, kOutlierGrid, 0.0);
      CheckFit(fits[0], outliers.data(), outlier_count, r, kOutlierGroup);
      AffineCodes(outliers.data(), outlier_count, fits[0], outlier_max, codes.data());
      for (size_t k = 0; k < outliers.size(); ++k) split.codes[base + outlier_cols[k]] = codes[k];
      for (size_t begin = 0, g = 0; begin < inliers.size(); begin += group, ++g) {
        const auto n = static_cast<uint32_t>(std::min<size_t>(group, inliers.size() - begin));
        fits[1 + g] = FitAffine(inliers.data() + begin, n, inlier_max, kInlierGrid, options.inlier_noise);
        CheckFit(fits[1 + g], inliers.data() + begin, n, r, static_cast<uint32_t>(g));
        AffineCodes(inliers.data() + begin, n, fits[1 + g], inlier_max, codes.data() + begin);
      }
      for (size_t k = 0; k < inliers.size(); ++k) split.codes[base + inlier_cols[k]] = codes[k];
    }
  });
  return split;
}

QuantizedTensor WriteSplit(const SplitCodes& split, uint32_t rows, uint32_t cols, const QuantOptions& options) {
  const uint32_t group = options.group_size == kPerChannel ? cols : options.group_size;
  const uint32_t bitmap_words = quant::BitmapWordsPerRow(cols);
  const uint32_t pairs_per_row = quant::SplitScalePairsPerRow(cols, group);
  uint64_t outlier_count = 0;
  for (bool o : split.is_outlier) outlier_count += o ? 1u : 0u;
  const uint64_t inlier_count = split.is_outlier.size() - outlier_count;

  QuantizedTensor q;
  q.scheme = image::Scheme::kSplit;
  q.bits = static_cast<uint8_t>(options.bits);
  q.cell_bits = static_cast<uint8_t>(options.cell_bits);
  q.outlier_bits = static_cast<uint8_t>(options.outlier_bits);
  q.group_size = static_cast<uint16_t>(group);
  q.outlier_count = static_cast<uint32_t>(outlier_count);
  if (options.reconstruct) q.reconstruction.resize(split.codes.size());
  q.scales.assign(quant::SplitScalesBytes(rows, cols, group), 0);
  for (size_t pair = 0; pair < split.fits.size(); ++pair) PutPair(q.scales, pair, split.fits[pair]);
  std::vector<uint32_t> inlier_words(quant::StreamWords(inlier_count, options.bits, options.cell_bits), 0u);
  std::vector<uint32_t> outlier_words(quant::StreamWords(outlier_count, options.outlier_bits, 1), 0u);
  std::vector<uint32_t> bitmap(static_cast<size_t>(rows) * bitmap_words, 0u);
  std::vector<uint32_t> row_start(rows + 1u, 0u);

  uint64_t next_outlier = 0;
  CodeStream inlier_stream(inlier_words.data(), options.bits, options.cell_bits);
  CodeStream outlier_stream(outlier_words.data(), options.outlier_bits, 1);
  std::vector<float> scale(pairs_per_row), zero(pairs_per_row);  // the row's fits as floats
  for (uint32_t r = 0; r < rows; ++r) {
    row_start[r] = static_cast<uint32_t>(next_outlier);
    const AffineFit* fits = split.fits.data() + static_cast<size_t>(r) * pairs_per_row;
    for (uint32_t p = 0; p < pairs_per_row; ++p) scale[p] = HalfToFloat(fits[p].scale), zero[p] = HalfToFloat(fits[p].zero);
    uint32_t inliers = 0;
    for (uint32_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      const uint32_t code = split.codes[i];
      uint32_t p = 0;
      if (split.is_outlier[i]) {
        bitmap[static_cast<size_t>(r) * bitmap_words + c / 32u] |= 1u << (c % 32u);
        outlier_stream.Put(code);
        ++next_outlier;
      } else {
        p = 1u + inliers++ / group;
        inlier_stream.Put(code);
      }
      // quant::DequantGroupAffine with the fp16 pair decoded once per row.
      if (options.reconstruct) q.reconstruction[i] = (static_cast<float>(code) - zero[p]) * scale[p];
    }
  }
  inlier_stream.Flush();
  outlier_stream.Flush();
  row_start[rows] = static_cast<uint32_t>(next_outlier);

  q.data.resize(inlier_words.size() * 4u);
  if (!inlier_words.empty()) std::memcpy(q.data.data(), inlier_words.data(), q.data.size());
  q.outliers.reserve(quant::SplitOutliersBytes(rows, cols, outlier_count, options.outlier_bits));
  for (uint32_t s : row_start) AppendU32(q.outliers, s);
  AppendWords(q.outliers, bitmap);
  AppendWords(q.outliers, outlier_words);
  return q;
}

QuantizedTensor QuantizeSplit(const Tensor& tensor, const QuantOptions& options) {
  return WriteSplit(FitSplit(tensor, options), tensor.rows, tensor.cols, options);
}

}  // namespace qmc::host
