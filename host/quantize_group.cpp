#include <algorithm>
#include <cmath>

#include "common/half.h"
#include "common/quant_layout.h"
#include "host/quantize.h"

namespace qmc::host {
namespace {

// Shrink factors of the [min, max] range tried per group; 1.0 first, so an
// exact tie keeps the unclipped range.
constexpr int kClipSteps = 25;
constexpr float kClipStep = 0.02f;

struct GroupFit {
  uint16_t scale = 0;
  uint16_t zero = 0;
  double error = 0.0;
};

uint32_t QuantizeValue(float w, float scale, float zero, uint32_t max_code) {
  const float q = std::nearbyint(w / scale + zero);
  return static_cast<uint32_t>(std::clamp(q, 0.0f, static_cast<float>(max_code)));
}

// Fits one group to the inliers `w[i]` (mask false); returns the best fp16 pair.
GroupFit FitGroup(const float* w, const std::vector<bool>& is_outlier, size_t base, uint32_t n, uint32_t max_code) {
  float lo = 0.0f, hi = 0.0f;  // the range always holds 0: the zero point is a code
  for (uint32_t i = 0; i < n; ++i) {
    if (is_outlier.empty() || !is_outlier[base + i]) {
      lo = std::min(lo, w[i]);
      hi = std::max(hi, w[i]);
    }
  }
  GroupFit best;
  best.error = INFINITY;
  for (int step = 0; step < kClipSteps; ++step) {
    const float shrink = 1.0f - kClipStep * static_cast<float>(step);
    const uint16_t scale = FloatToHalf((hi - lo) * shrink / static_cast<float>(max_code));
    const float scale_f = HalfToFloat(scale);
    if (scale_f == 0.0f) break;  // the group is all zero (or all outliers)
    const float zero_f = std::clamp(std::nearbyint(-lo * shrink / scale_f), 0.0f, static_cast<float>(max_code));
    const uint16_t zero = FloatToHalf(zero_f);
    double error = 0.0;
    for (uint32_t i = 0; i < n; ++i) {
      if (!is_outlier.empty() && is_outlier[base + i]) continue;
      const float r = quant::DequantGroupAffine(QuantizeValue(w[i], scale_f, zero_f, max_code), scale, zero);
      error += static_cast<double>(w[i] - r) * (w[i] - r);
    }
    if (error < best.error) best = {scale, zero, error};
  }
  if (best.error == INFINITY) best = {0, 0, 0.0};
  return best;
}

}  // namespace

GroupCodes QuantizeGroupAffine(const Tensor& tensor, const std::vector<bool>& is_outlier, uint32_t bits,
                               uint32_t group_size) {
  const uint32_t max_code = (1u << bits) - 1u;
  const uint32_t groups = quant::GroupsPerRow(tensor.cols, group_size);
  GroupCodes out;
  out.codes.resize(tensor.data.size());
  out.scale_zero.resize(static_cast<size_t>(tensor.rows) * groups * 2u);
  for (uint32_t r = 0; r < tensor.rows; ++r) {
    for (uint32_t g = 0; g < groups; ++g) {
      const uint32_t first = g * group_size;
      const uint32_t n = std::min(group_size, tensor.cols - first);
      const size_t base = static_cast<size_t>(r) * tensor.cols + first;
      const float* w = tensor.data.data() + base;
      const GroupFit fit = FitGroup(w, is_outlier, base, n, max_code);
      const size_t pair = (static_cast<size_t>(r) * groups + g) * 2u;
      out.scale_zero[pair] = fit.scale;
      out.scale_zero[pair + 1] = fit.zero;
      const float scale_f = HalfToFloat(fit.scale);
      const float zero_f = HalfToFloat(fit.zero);
      for (uint32_t i = 0; i < n; ++i) {
        const bool outlier = !is_outlier.empty() && is_outlier[base + i];
        out.codes[base + i] = static_cast<uint8_t>(
            outlier || scale_f == 0.0f ? static_cast<uint32_t>(zero_f) : QuantizeValue(w[i], scale_f, zero_f, max_code));
      }
    }
  }
  return out;
}

}  // namespace qmc::host
