#include "common/kernels/matvec_avx2.h"

#include <immintrin.h>

#include <cstddef>
#include <utility>

#include "common/kernels/fast_half.h"
#include "common/kernels/matvec_scalar.h"
#include "common/kernels/packed_tensor.h"
#include "common/kernels/unpack_codes.h"

// Per function rather than per file: inline functions from shared headers
// then stay baseline x86-64 code, and no AVX2 copy of them can be picked by
// the linker for a caller on a CPU without it.
#define QMC_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace qmc::kernels {
namespace {

constexpr uint32_t Lcm(uint32_t a, uint32_t b) { return a / Gcd(a, b) * b; }

// How a vector of 8 consecutive codes is cut from the row's words: lane j is
// (word lo_word[j] >> lo_shift[j]) | (word hi_word[j] << hi_shift[j]), word
// indices counted from `base`. The second term carries the high bits of a
// code that straddles two words; for the others its shift is 32, which
// vpsllvd turns into 0.
struct alignas(32) LanePlan {
  int32_t lo_word[8];
  int32_t lo_shift[8];
  int32_t hi_word[8];
  int32_t hi_shift[8];
  int32_t load_mask[4];  // the words the vector reads: never past the row
  uint32_t base;
  uint32_t words;   // 1 or 2
  bool straddles;   // some lane needs the second term
};

// The plans repeat every lcm(codes per superblock, 8) codes: e.g. 4 vectors
// over 3 words for (3 bits, 32-bit words), 15 vectors over 16 words for
// (4 bits, 30-bit words).
template <uint32_t B, uint32_t S>
struct LanePattern {
  static constexpr uint32_t kCodes = Lcm(Superblock<B, S>::kCodes, 8);
  static constexpr uint32_t kWords = kCodes * B / S;
  static constexpr uint32_t kVectors = kCodes / 8;
  struct Plans {
    LanePlan vector[kVectors];
  };

  static constexpr Plans Make() {
    Plans plans{};
    for (uint32_t v = 0; v < kVectors; ++v) {
      LanePlan& plan = plans.vector[v];
      plan.base = 8 * v * B / S;
      plan.words = 1;
      for (uint32_t j = 0; j < 8; ++j) {
        const uint32_t first = (8 * v + j) * B;
        const auto word = static_cast<int32_t>(first / S - plan.base);
        const uint32_t offset = first % S;
        const bool straddles = offset + B > S;
        plan.lo_word[j] = word;
        plan.lo_shift[j] = static_cast<int32_t>(offset);
        plan.hi_word[j] = straddles ? word + 1 : word;
        plan.hi_shift[j] = static_cast<int32_t>(straddles ? S - offset : 32u);
        plan.straddles = plan.straddles || straddles;
        if (static_cast<uint32_t>(plan.hi_word[j]) + 1 > plan.words) plan.words = static_cast<uint32_t>(plan.hi_word[j]) + 1;
      }
      for (uint32_t i = 0; i < 4; ++i) plan.load_mask[i] = i < plan.words ? -1 : 0;
    }
    return plans;
  }
  static constexpr Plans kPlans = Make();
};

QMC_AVX2 inline __m256i Load8(const int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }

// The plan's lanes from words w (lane i = word base + i), not yet masked.
QMC_AVX2 inline __m256i CutLanes(__m256i w, const LanePlan& plan, bool straddles) {
  __m256i lanes = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(w, Load8(plan.lo_word)), Load8(plan.lo_shift));
  if (straddles) {
    lanes = _mm256_or_si256(lanes, _mm256_sllv_epi32(_mm256_permutevar8x32_epi32(w, Load8(plan.hi_word)),
                                                     Load8(plan.hi_shift)));
  }
  return lanes;
}

template <uint32_t B, bool kFlip>
QMC_AVX2 inline __m256 CodesToFloats(__m256i lanes, __m256i flip) {
  __m256i codes = _mm256_and_si256(lanes, _mm256_set1_epi32((1 << B) - 1));
  if constexpr (kFlip) codes = _mm256_xor_si256(codes, flip);
  return _mm256_cvtepi32_ps(codes);
}

// Vector V of a whole period, everything about it known at compile time: a
// vector within one word shifts a broadcast of it, and only vectors with a
// straddling code pay for the second term (and for clearing a 30-bit word's
// top bits, which only such a code could pick up).
template <uint32_t B, uint32_t S, bool kFlip, size_t V>
QMC_AVX2 inline void UnpackPlannedVector(const uint32_t* period, __m256i flip, float* out) {
  constexpr const LanePlan& plan = LanePattern<B, S>::kPlans.vector[V];
  __m256i lanes;
  if constexpr (plan.words == 1) {
    lanes = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(period[plan.base])), Load8(plan.lo_shift));
  } else {
    __m256i w = _mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(period + plan.base)));
    if constexpr (plan.straddles && S != 32) w = _mm256_and_si256(w, _mm256_set1_epi32((1 << S) - 1));
    lanes = CutLanes(w, plan, plan.straddles);
  }
  _mm256_storeu_ps(out + 8 * V, CodesToFloats<B, kFlip>(lanes, flip));
}

template <uint32_t B, uint32_t S, bool kFlip, size_t... V>
QMC_AVX2 inline void UnpackPeriod(const uint32_t* period, __m256i flip, float* out, std::index_sequence<V...>) {
  (UnpackPlannedVector<B, S, kFlip, V>(period, flip, out), ...);
}

// Whole periods unrolled; then the whole vectors of a last partial period,
// each reading only its own words (masked); then single codes.
template <uint32_t B, uint32_t S, bool kFlip>
QMC_AVX2 void UnpackRow(const uint32_t* words, uint32_t cols, uint32_t flip, float* out) {
  using Pattern = LanePattern<B, S>;
  const __m256i flip_bits = _mm256_set1_epi32(static_cast<int32_t>(flip));
  const uint32_t* period = words;
  uint32_t k = 0;
  for (; k + Pattern::kCodes <= cols; k += Pattern::kCodes, period += Pattern::kWords) {
    UnpackPeriod<B, S, kFlip>(period, flip_bits, out + k, std::make_index_sequence<Pattern::kVectors>{});
  }
  for (uint32_t v = 0; k + 8 <= cols; k += 8, ++v) {
    const LanePlan& plan = Pattern::kPlans.vector[v];
    __m128i loaded = _mm_maskload_epi32(reinterpret_cast<const int*>(period + plan.base),
                                        _mm_load_si128(reinterpret_cast<const __m128i*>(plan.load_mask)));
    if constexpr (S != 32) loaded = _mm_and_si128(loaded, _mm_set1_epi32((1 << S) - 1));
    // lanes 4..7 are undefined and never indexed
    const __m256i lanes = CutLanes(_mm256_castsi128_si256(loaded), plan, true);
    _mm256_storeu_ps(out + k, CodesToFloats<B, kFlip>(lanes, flip_bits));
  }
  for (; k < cols; ++k) out[k] = static_cast<float>(static_cast<int32_t>(CodeFromWords(words, k, B, S) ^ flip));
}

// Lanes [0, n) of a mask, n in 0..8.
alignas(32) constexpr int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
QMC_AVX2 inline __m256i FirstLanes(uint32_t n) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
}

QMC_AVX2 inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

QMC_AVX2 float Dot(const float* a, const float* b, uint32_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  uint32_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    const __m256i m = FirstLanes(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

QMC_AVX2 float DotF16(const uint16_t* w, const float* x, uint32_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))),
                         _mm256_loadu_ps(x + i), s0);
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += FastHalfToFloat(w[i]) * x[i];
  return HorizontalSum(_mm256_add_ps(s0, s1)) + tail;
}

// A group's scale and zero, broadcast. Group-affine: the fp16 pair through
// F16C, not the scalar HalfToFloat, whose branches cost as much as a
// group's products.
struct GroupScaleVectors {
  __m256 scale;
  __m256 zero;
};

QMC_AVX2 inline GroupScaleVectors AffineScaleVectors(const uint8_t* row_scales, uint32_t group) {
  const __m128 pair = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int32_t>(LoadU32(row_scales + group * 4u))));
  return {_mm256_broadcastss_ps(pair), _mm256_broadcastss_ps(_mm_movehdup_ps(pair))};
}

QMC_AVX2 inline GroupScaleVectors MxScaleVectors(const uint8_t* row_scales, uint32_t group) {
  const GroupScale s = MxScale(row_scales, group);
  return {_mm256_set1_ps(s.scale), _mm256_set1_ps(s.zero)};
}

// As the scalar GroupedDot: Σ_g scale_g · Σ_{i in g} (code_i − zero_g)·x_i.
// A group's last partial vector is read masked (zeros add nothing).
template <GroupScaleVectors (*kScaleOf)(const uint8_t*, uint32_t)>
QMC_AVX2 float GroupedDot(const float* codes, const float* x, uint32_t cols, uint32_t group_size,
                          const uint8_t* row_scales) {
  __m256 sum = _mm256_setzero_ps();
  for (uint32_t g = 0, begin = 0; begin < cols; ++g, begin += group_size) {
    const uint32_t n = cols - begin < group_size ? cols - begin : group_size;
    const GroupScaleVectors s = kScaleOf(row_scales, g);
    const float* c = codes + begin;
    const float* v = x + begin;
    __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
      d0 = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(c + i), s.zero), _mm256_loadu_ps(v + i), d0);
      d1 = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(c + i + 8), s.zero), _mm256_loadu_ps(v + i + 8), d1);
    }
    if (i + 8 <= n) {
      d0 = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(c + i), s.zero), _mm256_loadu_ps(v + i), d0);
      i += 8;
    }
    if (i < n) {
      const __m256i m = FirstLanes(n - i);
      d1 = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_maskload_ps(c + i, m), s.zero), _mm256_maskload_ps(v + i, m), d1);
    }
    sum = _mm256_fmadd_ps(s.scale, _mm256_add_ps(d0, d1), sum);
  }
  return HorizontalSum(sum);
}

template <bool kFlip>
QMC_AVX2 void UnpackLayout(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                           float* out) {
  const bool full_words = StreamBitsPerWord(cell_bits) == 32;
  switch (bits) {
    case 2:
      return full_words ? UnpackRow<2, 32, kFlip>(row_words, cols, flip, out)
                        : UnpackRow<2, 30, kFlip>(row_words, cols, flip, out);
    case 3:
      return full_words ? UnpackRow<3, 32, kFlip>(row_words, cols, flip, out)
                        : UnpackRow<3, 30, kFlip>(row_words, cols, flip, out);
    default:  // 4, the only other width a validated image holds
      return full_words ? UnpackRow<4, 32, kFlip>(row_words, cols, flip, out)
                        : UnpackRow<4, 30, kFlip>(row_words, cols, flip, out);
  }
}

QMC_AVX2 void Unpack(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                     float* out) {
  if (flip == 0) return UnpackLayout<false>(row_words, cols, bits, cell_bits, flip, out);
  UnpackLayout<true>(row_words, cols, bits, cell_bits, flip, out);
}

template <GroupScaleVectors (*kScaleOf)(const uint8_t*, uint32_t)>
QMC_AVX2 void PackedMatVec(const image::ImageView& image, const image::TensorEntry& t, uint32_t flip, const float* x,
                           float* y, float* codes) {
  const PackedTensor p(image, t);
  for (uint32_t r = 0; r < t.rows; ++r) {
    Unpack(p.RowWords(r), t.cols, t.bits, t.cell_bits, flip, codes);
    y[r] = GroupedDot<kScaleOf>(codes, x, t.cols, t.group_size, p.RowScales(r)) + p.OutlierDot(r, x);
  }
}

QMC_AVX2 void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                     float* row_buffer) {
  const uint8_t* data = image.blob(t.data).data();
  switch (static_cast<image::Scheme>(t.scheme)) {
    case image::Scheme::kF32: {
      const auto* w = reinterpret_cast<const float*>(data);
      for (uint32_t r = 0; r < t.rows; ++r) y[r] = Dot(w + static_cast<size_t>(r) * t.cols, x, t.cols);
      return;
    }
    case image::Scheme::kF16: {
      const auto* w = reinterpret_cast<const uint16_t*>(data);
      for (uint32_t r = 0; r < t.rows; ++r) y[r] = DotF16(w + static_cast<size_t>(r) * t.cols, x, t.cols);
      return;
    }
    case image::Scheme::kGroupAffine: return PackedMatVec<AffineScaleVectors>(image, t, 0u, x, y, row_buffer);
    case image::Scheme::kMxInt4: return PackedMatVec<MxScaleVectors>(image, t, kMxCodeFlip, x, y, row_buffer);
    case image::Scheme::kSplit: return MatVecScalar(image, t, x, y, row_buffer);  // TODO(split kernels): vector version
  }
}

}  // namespace

// The entry points are baseline functions: GCC treats a target attribute on
// a definition as a separate version of the function it declares.
bool Avx2Supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

void UnpackCodesAvx2(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                     float* out) {
  Unpack(row_words, cols, bits, cell_bits, flip, out);
}

void MatVecAvx2(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer) {
  MatVec(image, t, x, y, row_buffer);
}

}  // namespace qmc::kernels
