#include <algorithm>
#include <cmath>

#include "common/half.h"
#include "common/quant_layout.h"
#include "host/quantize.h"

namespace qmc::host {
namespace {

// fp16 holds every integer up to 2048 exactly.
constexpr float kMaxFreeZero = 2048.0f;

uint32_t QuantizeValue(float w, float scale, float zero, uint32_t max_code) {
  const float q = std::nearbyint(w / scale + zero);
  return static_cast<uint32_t>(std::clamp(q, 0.0f, static_cast<float>(max_code)));
}

// The values' range as the grid sees it.
struct Range {
  float lo, hi;
};

Range RangeOf(const float* w, uint32_t n, bool holds_zero) {
  float lo = holds_zero ? 0.0f : INFINITY, hi = holds_zero ? 0.0f : -INFINITY;
  for (uint32_t i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  if (n == 0) lo = hi = 0.0f;
  // A range of one value (one outlier, say) has no width to divide: it is
  // widened to hold 0, so the value is a whole number of steps from zero.
  if (!holds_zero && hi - lo == 0.0f) {
    lo = std::min(lo, 0.0f);
    hi = std::max(hi, 0.0f);
  }
  return {lo, hi};
}

// The range shrunk by `shrink` as {scale, zero}; scale 0 when the values are all zero.
AffineFit Candidate(Range range, uint32_t max_code, bool holds_zero, float shrink) {
  const float mid = holds_zero ? 0.0f : 0.5f * (range.lo + range.hi);
  const float low = mid + (range.lo - mid) * shrink;
  const uint16_t scale = FloatToHalf((range.hi - range.lo) * shrink / static_cast<float>(max_code));
  const float scale_f = HalfToFloat(scale);
  if (scale_f == 0.0f) return {0, 0, 0.0};
  const float zero_f = holds_zero ? std::clamp(std::nearbyint(-low / scale_f), 0.0f, static_cast<float>(max_code))
                                  : std::clamp(std::nearbyint(-low / scale_f), -kMaxFreeZero, kMaxFreeZero);
  return {scale, FloatToHalf(zero_f), 0.0};
}

}  // namespace

AffineFit FitAffine(const float* w, uint32_t n, uint32_t max_code, const AffineGrid& grid, double noise) {
  const Range range = RangeOf(w, n, grid.holds_zero);
  AffineFit best;
  best.loss = INFINITY;
  for (int step = 0; step < grid.steps; ++step) {
    const float shrink = 1.0f - grid.step * static_cast<float>(step);
    const AffineFit fit = Candidate(range, max_code, grid.holds_zero, shrink);
    const float scale_f = HalfToFloat(fit.scale);
    if (scale_f == 0.0f) break;  // the values are all zero
    const float zero_f = HalfToFloat(fit.zero);
    double loss = static_cast<double>(n) * noise * scale_f * scale_f;
    for (uint32_t i = 0; i < n; ++i) {
      const float r = quant::DequantGroupAffine(QuantizeValue(w[i], scale_f, zero_f, max_code), fit.scale, fit.zero);
      loss += static_cast<double>(w[i] - r) * (w[i] - r);
    }
    if (loss < best.loss) best = {fit.scale, fit.zero, loss};
  }
  if (best.loss == INFINITY) best = {0, 0, 0.0};
  return best;
}

AffineFit ShrunkAffine(const float* w, uint32_t n, uint32_t max_code, bool holds_zero, float shrink) {
  return Candidate(RangeOf(w, n, holds_zero), max_code, holds_zero, shrink);
}

uint32_t AffineCode(float w, const AffineFit& fit, uint32_t max_code) {
  const float scale_f = HalfToFloat(fit.scale);
  const float zero_f = HalfToFloat(fit.zero);
  if (scale_f == 0.0f) return static_cast<uint32_t>(std::clamp(zero_f, 0.0f, static_cast<float>(max_code)));
  return QuantizeValue(w, scale_f, zero_f, max_code);
}

GroupCodes QuantizeGroupAffine(const Tensor& tensor, const std::vector<bool>& is_outlier, uint32_t bits,
                               uint32_t group_size, double noise) {
  const uint32_t max_code = (1u << bits) - 1u;
  const uint32_t groups = quant::GroupsPerRow(tensor.cols, group_size);
  GroupCodes out;
  out.codes.resize(tensor.data.size());
  out.scale_zero.resize(static_cast<size_t>(tensor.rows) * groups * 2u);
  std::vector<float> inliers(group_size);
  for (uint32_t r = 0; r < tensor.rows; ++r) {
    for (uint32_t g = 0; g < groups; ++g) {
      const uint32_t first = g * group_size;
      const uint32_t n = std::min(group_size, tensor.cols - first);
      const size_t base = static_cast<size_t>(r) * tensor.cols + first;
      const float* w = tensor.data.data() + base;
      uint32_t count = 0;
      for (uint32_t i = 0; i < n; ++i) {
        if (is_outlier.empty() || !is_outlier[base + i]) inliers[count++] = w[i];
      }
      const AffineFit fit = FitAffine(inliers.data(), count, max_code, kGroupGrid, noise);
      const size_t pair = (static_cast<size_t>(r) * groups + g) * 2u;
      out.scale_zero[pair] = fit.scale;
      out.scale_zero[pair + 1] = fit.zero;
      // Codes at outlier positions equal the zero point: they decode to 0.
      const AffineFit at_zero{fit.scale, fit.zero, 0.0};
      for (uint32_t i = 0; i < n; ++i) {
        const bool outlier = !is_outlier.empty() && is_outlier[base + i];
        out.codes[base + i] = static_cast<uint8_t>(outlier ? AffineCode(0.0f, at_zero, max_code) : AffineCode(w[i], fit, max_code));
      }
    }
  }
  return out;
}

}  // namespace qmc::host
