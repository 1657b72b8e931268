#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "common/half.h"
#include "common/quant_layout.h"
#include "host/parallel_rows.h"
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

// The loss terms of one candidate: (w − ŵ)² with ŵ as the image decodes it,
// each exact in double (a float squared). The code (nearbyint, then clamp,
// as QuantizeValue) is kept as a float: the same integer, up to the sign of
// a zero code, which does not change w − ŵ.
inline float Residual(float w, float scale, float zero, float max_code) {
  const float q = std::clamp(std::nearbyint(w / scale + zero), 0.0f, max_code);
  return w - (q - zero) * scale;
}

// Eight residuals at once, each op the scalar one on every lane (IEEE
// division, round to nearest even, min/max equal to the clamp for the
// finite values it sees; no FMA is enabled, so nothing contracts).
__attribute__((target("avx2"))) inline __m256 Residuals(const float* w, __m256 scale, __m256 zero, __m256 max_code,
                                                         __m256* q_out) {
  const __m256 x = _mm256_loadu_ps(w);
  __m256 q = _mm256_round_ps(_mm256_add_ps(_mm256_div_ps(x, scale), zero), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  q = _mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), max_code);
  *q_out = q;
  return _mm256_sub_ps(x, _mm256_mul_ps(_mm256_sub_ps(q, zero), scale));
}

// Σ (w − ŵ)² in lanes of double partial sums: the same terms as the
// reference loop, summed in another order, so within rounding of its sum.
__attribute__((target("avx2"))) double LaneLossAvx2(const float* w, uint32_t n, float scale, float zero, float max_code) {
  const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zero), m = _mm256_set1_ps(max_code);
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  __m256 q;
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 d0 = Residuals(w + i, s, z, m, &q), d1 = Residuals(w + i + 8, s, z, m, &q);
    const __m256d e0 = _mm256_cvtps_pd(_mm256_castps256_ps128(d0)), e1 = _mm256_cvtps_pd(_mm256_extractf128_ps(d0, 1));
    const __m256d e2 = _mm256_cvtps_pd(_mm256_castps256_ps128(d1)), e3 = _mm256_cvtps_pd(_mm256_extractf128_ps(d1, 1));
    acc[0] = _mm256_add_pd(acc[0], _mm256_mul_pd(e0, e0));
    acc[1] = _mm256_add_pd(acc[1], _mm256_mul_pd(e1, e1));
    acc[2] = _mm256_add_pd(acc[2], _mm256_mul_pd(e2, e2));
    acc[3] = _mm256_add_pd(acc[3], _mm256_mul_pd(e3, e3));
  }
  double lanes[16];
  for (int k = 0; k < 4; ++k) _mm256_storeu_pd(lanes + 4 * k, acc[k]);
  double sum = 0.0;
  for (double lane : lanes) sum += lane;
  for (; i < n; ++i) {
    const float d = Residual(w[i], scale, zero, max_code);
    sum += static_cast<double>(d) * d;
  }
  return sum;
}

double LaneLossScalar(const float* w, uint32_t n, float scale, float zero, float max_code) {
  double lanes[4] = {};
  for (uint32_t i = 0; i < n; ++i) {
    const float d = Residual(w[i], scale, zero, max_code);
    lanes[i % 4] += static_cast<double>(d) * d;
  }
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

// Probed on first use: a static initialiser may run before the CPU probe has.
bool HasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

double LaneLoss(const float* w, uint32_t n, float scale, float zero, float max_code) {
  return HasAvx2() ? LaneLossAvx2(w, n, scale, zero, max_code) : LaneLossScalar(w, n, scale, zero, max_code);
}

// AffineCode over a run of weights (scale ≠ 0).
__attribute__((target("avx2"))) void RoundedCodesAvx2(const float* w, uint32_t n, float scale, float zero,
                                                       float max_code, uint8_t* codes) {
  const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zero), m = _mm256_set1_ps(max_code);
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 q;
    Residuals(w + i, s, z, m, &q);
    alignas(32) int32_t ints[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(ints), _mm256_cvtps_epi32(q));  // integral already: exact
    for (int k = 0; k < 8; ++k) codes[i + k] = static_cast<uint8_t>(ints[k]);
  }
  for (; i < n; ++i) codes[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(w[i] / scale + zero), 0.0f, max_code));
}

void RoundedCodes(const float* w, uint32_t n, float scale, float zero, float max_code, uint8_t* codes) {
  if (HasAvx2()) return RoundedCodesAvx2(w, n, scale, zero, max_code, codes);
  for (uint32_t i = 0; i < n; ++i) {
    codes[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(w[i] / scale + zero), 0.0f, max_code));
  }
}

// The reference objective, summed in element order as FitAffineReference does.
double SequentialLoss(const float* w, uint32_t n, const AffineFit& fit, uint32_t max_code, double noise) {
  const float scale_f = HalfToFloat(fit.scale);
  const float zero_f = HalfToFloat(fit.zero);
  double loss = static_cast<double>(n) * noise * scale_f * scale_f;
  for (uint32_t i = 0; i < n; ++i) {
    const float r = quant::DequantGroupAffine(QuantizeValue(w[i], scale_f, zero_f, max_code), fit.scale, fit.zero);
    loss += static_cast<double>(w[i] - r) * (w[i] - r);
  }
  return loss;
}

constexpr int kMaxSteps = 64;

}  // namespace

AffineFit FitAffineReference(const float* w, uint32_t n, uint32_t max_code, const AffineGrid& grid, double noise) {
  const Range range = RangeOf(w, n, grid.holds_zero);
  AffineFit best;
  best.loss = INFINITY;
  for (int step = 0; step < grid.steps; ++step) {
    const float shrink = 1.0f - grid.step * static_cast<float>(step);
    const AffineFit fit = Candidate(range, max_code, grid.holds_zero, shrink);
    if (HalfToFloat(fit.scale) == 0.0f) break;  // the values are all zero
    const double loss = SequentialLoss(w, n, fit, max_code, noise);
    if (loss < best.loss) best = {fit.scale, fit.zero, loss};
  }
  if (best.loss == INFINITY) best = {0, 0, 0.0};
  return best;
}

// The reference's choice without its serial sums: every distinct candidate's
// loss is summed in lanes, which differs from the element-order sum by at
// most 2γ(n+1)·loss (all terms are ≥ 0). Only candidates within that margin
// of the best can be the reference's pick; when more than one is, their
// element-order sums decide, first lowest wins, as in the reference. A
// candidate equal to an earlier one ties it and never wins, so it is skipped.
AffineFit FitAffine(const float* w, uint32_t n, uint32_t max_code, const AffineGrid& grid, double noise) {
  if (grid.steps > kMaxSteps) return FitAffineReference(w, n, max_code, grid, noise);
  const Range range = RangeOf(w, n, grid.holds_zero);
  AffineFit fits[kMaxSteps];
  double approx[kMaxSteps];
  int count = 0;
  for (int step = 0; step < grid.steps; ++step) {
    const float shrink = 1.0f - grid.step * static_cast<float>(step);
    const AffineFit fit = Candidate(range, max_code, grid.holds_zero, shrink);
    const float scale_f = HalfToFloat(fit.scale);
    if (scale_f == 0.0f) break;  // the values are all zero
    if (count > 0 && fits[count - 1].scale == fit.scale && fits[count - 1].zero == fit.zero) continue;
    bool seen = false;
    for (int k = 0; k < count && !seen; ++k) seen = fits[k].scale == fit.scale && fits[k].zero == fit.zero;
    if (seen) continue;
    fits[count] = fit;
    approx[count] = static_cast<double>(n) * noise * scale_f * scale_f +
                    LaneLoss(w, n, scale_f, HalfToFloat(fit.zero), static_cast<float>(max_code));
    ++count;
  }
  if (count == 0) return {0, 0, 0.0};
  // 4(n + 2)·2⁻⁵³ bounds 2γ(n+1)/(1 − γ(n+1)) with room for the bound's own rounding.
  const double margin = 4.0 * (static_cast<double>(n) + 2.0) * 0x1p-53;
  double ceiling = INFINITY;
  for (int k = 0; k < count; ++k) ceiling = std::min(ceiling, approx[k] * (1.0 + margin));
  AffineFit best;
  best.loss = INFINITY;
  int contenders = 0, only = 0;
  for (int k = 0; k < count; ++k) {
    if (approx[k] * (1.0 - margin) <= ceiling) ++contenders, only = k;
  }
  for (int k = 0; k < count; ++k) {
    if (approx[k] * (1.0 - margin) > ceiling) continue;
    if (contenders == 1 && k != only) continue;
    const double loss = SequentialLoss(w, n, fits[k], max_code, noise);
    if (loss < best.loss) best = {fits[k].scale, fits[k].zero, loss};
  }
  return best;
}

AffineFit ShrunkAffine(const float* w, uint32_t n, uint32_t max_code, bool holds_zero, float shrink) {
  return Candidate(RangeOf(w, n, holds_zero), max_code, holds_zero, shrink);
}


void CheckFit(const AffineFit& fit, const float* w, uint32_t n, uint32_t row, uint32_t group) {
  const bool unusable = (fit.scale & 0x7C00u) == 0x7C00u ||
                        ((fit.scale & 0x7FFFu) == 0 && std::any_of(w, w + n, [](float v) { return v != 0.0f; }));
  if (!unusable) return;
  // The search finds no candidate either way; the range says which end it hit.
  const auto [lo, hi] = std::minmax_element(w, w + n);
  const bool overflow = *hi - *lo > 65504.0f;
  const std::string place = "row " + std::to_string(row) +
                            (group == kOutlierGroup ? ", outliers" : ", group " + std::to_string(group));
  throw ScaleRangeError(place + ": weights in [" + std::to_string(*lo) + ", " + std::to_string(*hi) +
                        "] need an fp16 scale that " + (overflow ? "overflows (above 65504)" : "flushes to zero"));
}

uint32_t AffineCode(float w, const AffineFit& fit, uint32_t max_code) {
  const float scale_f = HalfToFloat(fit.scale);
  const float zero_f = HalfToFloat(fit.zero);
  if (scale_f == 0.0f) return static_cast<uint32_t>(std::clamp(zero_f, 0.0f, static_cast<float>(max_code)));
  return QuantizeValue(w, scale_f, zero_f, max_code);
}

void AffineCodes(const float* w, uint32_t n, const AffineFit& fit, uint32_t max_code, uint8_t* codes) {
  const float scale_f = HalfToFloat(fit.scale);
  if (scale_f == 0.0f) {
    std::fill(codes, codes + n, static_cast<uint8_t>(AffineCode(0.0f, fit, max_code)));
    return;
  }
  RoundedCodes(w, n, scale_f, HalfToFloat(fit.zero), static_cast<float>(max_code), codes);
}

GroupCodes QuantizeGroupAffine(const Tensor& tensor, const std::vector<bool>& is_outlier, uint32_t bits,
                               uint32_t group_size, double noise) {
  const uint32_t max_code = (1u << bits) - 1u;
  const uint32_t groups = quant::GroupsPerRow(tensor.cols, group_size);
  GroupCodes out;
  out.codes.resize(tensor.data.size());
  out.scale_zero.resize(static_cast<size_t>(tensor.rows) * groups * 2u);
  ForRowRanges(tensor.rows, tensor.data.size(), [&](uint32_t row_begin, uint32_t row_end) {
    std::vector<float> inliers(group_size);
    for (uint32_t r = row_begin; r < row_end; ++r) {
      for (uint32_t g = 0; g < groups; ++g) {
        const uint32_t first = g * group_size;
        const uint32_t n = std::min(group_size, tensor.cols - first);
        const size_t base = static_cast<size_t>(r) * tensor.cols + first;
        const float* w = tensor.data.data() + base;
        const float* fitted = w;
        uint32_t count = n;
        if (!is_outlier.empty()) {
          count = 0;
          for (uint32_t i = 0; i < n; ++i) {
            if (!is_outlier[base + i]) inliers[count++] = w[i];
          }
          fitted = inliers.data();
        }
        const AffineFit fit = FitAffine(fitted, count, max_code, kGroupGrid, noise);
        CheckFit(fit, fitted, count, r, g);
        const size_t pair = (static_cast<size_t>(r) * groups + g) * 2u;
        out.scale_zero[pair] = fit.scale;
        out.scale_zero[pair + 1] = fit.zero;
        AffineCodes(w, n, fit, max_code, out.codes.data() + base);
        if (is_outlier.empty() || count == n) continue;
        // Codes at outlier positions equal the zero point: they decode to 0.
        const auto at_zero = static_cast<uint8_t>(AffineCode(0.0f, {fit.scale, fit.zero, 0.0}, max_code));
        for (uint32_t i = 0; i < n; ++i) {
          if (is_outlier[base + i]) out.codes[base + i] = at_zero;
        }
      }
    }
  });
  return out;
}

}  // namespace qmc::host
