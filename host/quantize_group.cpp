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

// Eight candidates' objectives at once, one candidate to a lane: each lane
// sums its terms in element order from its start value, each op the scalar
// one of SequentialLoss (IEEE division, round to nearest even, min/max equal
// to the clamp for the finite values it sees, the float residual squared
// exactly in double; no FMA is enabled, so nothing contracts). So every sum
// is the reference's, bit for bit. `Blocks` groups of eight share each pass
// over the weights, so the accumulators' add latencies overlap.
template <int Blocks>
__attribute__((target("avx2"))) void CandidateLossesAvx2(const float* w, uint32_t n, const float* scale,
                                                          const float* zero, float max_code, double* loss) {
  __m256 s[Blocks], z[Blocks];
  __m256d lo[Blocks], hi[Blocks];
  for (int b = 0; b < Blocks; ++b) {
    s[b] = _mm256_loadu_ps(scale + 8 * b), z[b] = _mm256_loadu_ps(zero + 8 * b);
    lo[b] = _mm256_loadu_pd(loss + 8 * b), hi[b] = _mm256_loadu_pd(loss + 8 * b + 4);
  }
  const __m256 m = _mm256_set1_ps(max_code);
  for (uint32_t i = 0; i < n; ++i) {
    const __m256 x = _mm256_set1_ps(w[i]);
    for (int b = 0; b < Blocks; ++b) {
      __m256 q = _mm256_round_ps(_mm256_add_ps(_mm256_div_ps(x, s[b]), z[b]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q = _mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), m);
      const __m256 d = _mm256_sub_ps(x, _mm256_mul_ps(_mm256_sub_ps(q, z[b]), s[b]));
      const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(d)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
      lo[b] = _mm256_add_pd(lo[b], _mm256_mul_pd(d0, d0));
      hi[b] = _mm256_add_pd(hi[b], _mm256_mul_pd(d1, d1));
    }
  }
  for (int b = 0; b < Blocks; ++b) _mm256_storeu_pd(loss + 8 * b, lo[b]), _mm256_storeu_pd(loss + 8 * b + 4, hi[b]);
}

// Probed on first use: a static initialiser may run before the CPU probe has.
bool HasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

// Eight-lane residuals, as CandidateLossesAvx2 computes them, for the codes.
__attribute__((target("avx2"))) inline __m256 Residuals(const float* w, __m256 scale, __m256 zero, __m256 max_code,
                                                         __m256* q_out) {
  const __m256 x = _mm256_loadu_ps(w);
  __m256 q = _mm256_round_ps(_mm256_add_ps(_mm256_div_ps(x, scale), zero), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  q = _mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), max_code);
  *q_out = q;
  return _mm256_sub_ps(x, _mm256_mul_ps(_mm256_sub_ps(q, zero), scale));
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

// The reference's search with its candidates' sums run side by side
// (CandidateLosses): the same sums, so the same pick, first lowest wins. A
// candidate equal to the one before it ties it and never wins: skipped.
AffineFit FitAffine(const float* w, uint32_t n, uint32_t max_code, const AffineGrid& grid, double noise) {
  if (grid.steps > kMaxSteps || !HasAvx2()) return FitAffineReference(w, n, max_code, grid, noise);
  const Range range = RangeOf(w, n, grid.holds_zero);
  AffineFit fits[kMaxSteps];
  // Lanes past `count` hold a harmless candidate (scale 1, zero 0) whose sums are never read.
  alignas(32) float scale[kMaxSteps], zero[kMaxSteps];
  alignas(32) double loss[kMaxSteps];
  int count = 0;
  for (int step = 0; step < grid.steps; ++step) {
    const float shrink = 1.0f - grid.step * static_cast<float>(step);
    const AffineFit fit = Candidate(range, max_code, grid.holds_zero, shrink);
    const float scale_f = HalfToFloat(fit.scale);
    if (scale_f == 0.0f) break;  // the values are all zero
    if (count > 0 && fits[count - 1].scale == fit.scale && fits[count - 1].zero == fit.zero) continue;
    fits[count] = fit;
    scale[count] = scale_f, zero[count] = HalfToFloat(fit.zero);
    loss[count] = static_cast<double>(n) * noise * scale_f * scale_f;  // SequentialLoss's start
    ++count;
  }
  if (count == 0) return {0, 0, 0.0};
  const int padded = (count + 7) / 8 * 8;
  for (int k = count; k < padded; ++k) scale[k] = 1.0f, zero[k] = 0.0f, loss[k] = 0.0;
  const auto m = static_cast<float>(max_code);
  for (int first = 0; first < padded; first += 32) {
    switch (std::min(padded - first, 32) / 8) {
      case 1: CandidateLossesAvx2<1>(w, n, scale + first, zero + first, m, loss + first); break;
      case 2: CandidateLossesAvx2<2>(w, n, scale + first, zero + first, m, loss + first); break;
      case 3: CandidateLossesAvx2<3>(w, n, scale + first, zero + first, m, loss + first); break;
      default: CandidateLossesAvx2<4>(w, n, scale + first, zero + first, m, loss + first); break;
    }
  }
  AffineFit best;
  best.loss = INFINITY;
  for (int k = 0; k < count; ++k) {
    if (loss[k] < best.loss) best = {fits[k].scale, fits[k].zero, loss[k]};
  }
  if (best.loss == INFINITY) best = {0, 0, 0.0};
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
