#include "common/kernels/matvec_avx2.h"

#include <cpuid.h>
#include <immintrin.h>

#include <bit>
#include <cstddef>
#include <utility>

#include "common/dequantize.h"
#include "common/kernels/code_stream.h"
#include "common/kernels/fast_half.h"
#include "common/kernels/packed_tensor.h"
#include "common/kernels/split_columns.h"
#include "common/kernels/stream_window.h"
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
  uint32_t words;   // 1 or 2; 3 for some 7-bit outlier vectors
  bool straddles;   // some lane needs the second term
};

// The plans repeat every lcm(codes per superblock, 8) codes: e.g. 4 vectors
// over 3 words for (3 bits, 32-bit words), 15 vectors over 16 words for
// (4 bits, 30-bit words). With kReversed a vector's lanes hold its 8 codes
// in reverse order (the split scheme's outliers, whose x are reversed).
template <uint32_t B, uint32_t S, bool kReversed = false>
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
        const uint32_t first = (8 * v + (kReversed ? 7 - j : j)) * B;
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
// top bits, which only such a code could pick up). Reads only the period's
// words: a 3-word vector is never the period's last.
template <uint32_t B, uint32_t S, bool kReversed, size_t V>
QMC_AVX2 inline __m256i PlannedLanes(const uint32_t* period) {
  using Pattern = LanePattern<B, S, kReversed>;
  constexpr const LanePlan& plan = Pattern::kPlans.vector[V];
  if constexpr (plan.words == 1) {
    return _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(period[plan.base])), Load8(plan.lo_shift));
  } else {
    static_assert(plan.words == 2 || plan.base + 4 <= Pattern::kWords);
    __m256i w = _mm256_castsi128_si256(plan.words == 2
                                           ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(period + plan.base))
                                           : _mm_loadu_si128(reinterpret_cast<const __m128i*>(period + plan.base)));
    if constexpr (plan.straddles && S != 32) w = _mm256_and_si256(w, _mm256_set1_epi32((1 << S) - 1));
    return CutLanes(w, plan, plan.straddles);
  }
}

template <uint32_t B, uint32_t S, bool kFlip, size_t V>
QMC_AVX2 inline void UnpackPlannedVector(const uint32_t* period, __m256i flip, float* out) {
  _mm256_storeu_ps(out + 8 * V, CodesToFloats<B, kFlip>(PlannedLanes<B, S, false, V>(period), flip));
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

QMC_AVX2 void Axpy(float a, const float* x, float* y, uint32_t n) {
  const __m256 va = _mm256_set1_ps(a);
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i m = FirstLanes(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
  }
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

// The fused group-affine and mxint4 matvec: each vector of 8 codes is cut
// from the row's words by its compile-time plan and FMAed straight into
// the dot with x, no float row written. A group's Σ (code − zero)·x is
// scaled when its last vector is done, which needs every vector inside one
// group: group sizes that are a multiple of 8, or one group a row.
template <uint32_t B, uint32_t S, bool kFlip, GroupScaleVectors (*kScaleOf)(const uint8_t*, uint32_t)>
struct FusedRow {
  const uint8_t* scales;
  uint32_t groups;          // the row's groups
  uint32_t group_vectors;   // vectors a group
  uint32_t g = 0;           // the group being summed
  uint32_t left;            // its vectors still to come
  GroupScaleVectors s;
  __m256 d[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 sum = _mm256_setzero_ps();

  QMC_AVX2 FusedRow(const uint8_t* row_scales, uint32_t cols, uint32_t group_size)
      : scales(row_scales),
        groups((cols + group_size - 1) / group_size),
        group_vectors(group_size >= cols ? (cols + 7) / 8 : group_size / 8),
        left(group_vectors),
        s(kScaleOf(row_scales, 0)) {}

  // d[V % 2] += (codes − zero)·x for a vector of the row (lanes past the
  // row's end have x 0), then the group closed if this was its last.
  template <size_t V>
  QMC_AVX2 inline void Add(__m256i lanes, __m256 xs) {
    const __m256 codes = CodesToFloats<B, kFlip>(lanes, _mm256_set1_epi32(kFlip ? static_cast<int32_t>(kMxCodeFlip) : 0));
    d[V % 2] = _mm256_fmadd_ps(_mm256_sub_ps(codes, s.zero), xs, d[V % 2]);
    if (--left == 0) Close();
  }

  QMC_AVX2 inline void Close() {
    sum = _mm256_fmadd_ps(s.scale, _mm256_add_ps(d[0], d[1]), sum);
    d[0] = d[1] = _mm256_setzero_ps();
    left = group_vectors;
    if (++g < groups) s = kScaleOf(scales, g);
  }

  template <size_t... V>
  QMC_AVX2 inline void AddPeriod(const uint32_t* period, const float* x, std::index_sequence<V...>) {
    (Add<V>(PlannedLanes<B, S, false, V>(period), _mm256_loadu_ps(x + 8 * V)), ...);
  }
};

template <uint32_t B, uint32_t S, bool kFlip, GroupScaleVectors (*kScaleOf)(const uint8_t*, uint32_t)>
QMC_AVX2 void FusedPackedMatVec(const PackedTensor& p, const image::TensorEntry& t, const float* x, float* y) {
  using Pattern = LanePattern<B, S>;
  const uint32_t cols = t.cols;
  for (uint32_t r = 0; r < t.rows; ++r) {
    const uint32_t* words = p.RowWords(r);
    FusedRow<B, S, kFlip, kScaleOf> row(p.RowScales(r), cols, t.group_size);
    const uint32_t* period = words;
    uint32_t k = 0;
    for (; k + Pattern::kCodes <= cols; k += Pattern::kCodes, period += Pattern::kWords) {
      row.AddPeriod(period, x + k, std::make_index_sequence<Pattern::kVectors>{});
    }
    // The whole vectors of a last partial period, each reading only its own
    // words (masked), as UnpackRow; then the last codes one by one.
    for (uint32_t v = 0; k + 8 <= cols; k += 8, ++v) {
      const LanePlan& plan = Pattern::kPlans.vector[v];
      __m128i loaded = _mm_maskload_epi32(reinterpret_cast<const int*>(period + plan.base),
                                          _mm_load_si128(reinterpret_cast<const __m128i*>(plan.load_mask)));
      if constexpr (S != 32) loaded = _mm_and_si128(loaded, _mm_set1_epi32((1 << S) - 1));
      row.template Add<0>(CutLanes(_mm256_castsi128_si256(loaded), plan, true), _mm256_loadu_ps(x + k));
    }
    if (k < cols) {
      alignas(32) int32_t tail[8] = {};
      for (uint32_t j = 0; k + j < cols; ++j) tail[j] = static_cast<int32_t>(CodeFromWords(words, k + j, B, S));
      row.template Add<1>(Load8(tail), _mm256_maskload_ps(x + k, FirstLanes(cols - k)));
    }
    if (row.left != row.group_vectors) row.Close();  // the row's last group, partial
    y[r] = HorizontalSum(row.sum) + p.OutlierDot(r, x);
  }
}

template <bool kFlip, GroupScaleVectors (*kScaleOf)(const uint8_t*, uint32_t)>
QMC_AVX2 void FusedLayout(const PackedTensor& p, const image::TensorEntry& t, const float* x, float* y) {
  const bool full_words = StreamBitsPerWord(t.cell_bits) == 32;
  switch (t.bits) {
    case 2:
      return full_words ? FusedPackedMatVec<2, 32, kFlip, kScaleOf>(p, t, x, y)
                        : FusedPackedMatVec<2, 30, kFlip, kScaleOf>(p, t, x, y);
    case 3:
      return full_words ? FusedPackedMatVec<3, 32, kFlip, kScaleOf>(p, t, x, y)
                        : FusedPackedMatVec<3, 30, kFlip, kScaleOf>(p, t, x, y);
    default:  // 4, the only other width a validated image holds
      return full_words ? FusedPackedMatVec<4, 32, kFlip, kScaleOf>(p, t, x, y)
                        : FusedPackedMatVec<4, 30, kFlip, kScaleOf>(p, t, x, y);
  }
}

// Fused where every vector lies in one group; other group sizes unpack each
// row into `codes` and dot it group by group.
template <bool kFlip, GroupScaleVectors (*kScaleOf)(const uint8_t*, uint32_t)>
QMC_AVX2 void PackedMatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                           float* codes) {
  const PackedTensor p(image, t);
  if (t.group_size % 8 == 0 || t.group_size >= t.cols) return FusedLayout<kFlip, kScaleOf>(p, t, x, y);
  const uint32_t flip = kFlip ? kMxCodeFlip : 0u;
  for (uint32_t r = 0; r < t.rows; ++r) {
    Unpack(p.RowWords(r), t.cols, t.bits, t.cell_bits, flip, codes);
    y[r] = GroupedDot<kScaleOf>(codes, x, t.cols, t.group_size, p.RowScales(r)) + p.OutlierDot(r, x);
  }
}

// The split scheme (common/split_layout.h): x is split by the row's bitmap
// (common/kernels/split_columns.h), then each code stream is decoded 8 codes
// a vector and dotted with its contiguous x (StreamDot). Rows start
// mid-word, so the codes up to a superblock boundary, and the rest after
// the last whole period, are cut from 32-bit windows at any bit (one
// variable shift per lane); whole periods in between use the compile-time
// plans of the group-affine unpacking.
//
// Never writes outside y and the buffer, whatever the bitmap or the row
// starts hold (MRAM errors corrupt them at run time): the buffer writes are
// bounded as split_columns.h says, and code reads are clamped to the
// streams' words (StreamWindows::Safe, HasWords), so a corrupt row reads
// other rows' codes but nothing outside the blobs.

// One chunk of 8 columns (bitmap byte m) into both regions; `inliers` and
// `outliers` point at their next free slot and one past it. (Both move by
// the inlier count, the outliers' end 8 back first: one table load fewer.)
QMC_AVX2 inline void SplitEight(uint32_t m, const float* x, float*& inliers, float*& outliers) {
  const SplitChunk& chunk = kSplitChunks.byte[m];
  const __m256i order = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(chunk.order)));
  const __m256 lanes = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x), order);
  _mm256_storeu_ps(inliers, lanes);
  outliers -= 8;
  _mm256_storeu_ps(outliers, lanes);
  inliers += chunk.inliers;
  outliers += chunk.inliers;
}

// 8 lane indices, one per byte, widened for vpermps.
QMC_AVX2 inline __m256i LaneOrder(uint64_t bytes) {
  return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(bytes)));
}

// One of the last chunks: n ≤ 8 columns (bits m), no gap to spare, so the
// stores are masked to the lanes that belong there. The outliers are
// rotated to the front (the order's bytes rotated) so that no address
// before the buffer is formed.
QMC_AVX2 inline void SplitLastEight(uint32_t m, uint32_t n, const float* x, float*& inliers, float*& outliers) {
  uint64_t order;
  __builtin_memcpy(&order, kSplitChunks.byte[m].order, sizeof order);
  const auto k = static_cast<uint32_t>(8 - kSplitChunks.byte[m].inliers);
  const __m256 xs = _mm256_maskload_ps(x, FirstLanes(n));
  _mm256_maskstore_ps(inliers, FirstLanes(n - k), _mm256_permutevar8x32_ps(xs, LaneOrder(order)));
  outliers -= k;
  _mm256_maskstore_ps(outliers, FirstLanes(k), _mm256_permutevar8x32_ps(xs, LaneOrder(std::rotr(order, 8 * (8 - k)))));
  inliers += n - k;
}

// x split into buffer[0, inliers) and, reversed, buffer[inliers, cols);
// returns the inlier count. A bitmap word (4 chunks) at a time while 8
// columns follow it.
QMC_AVX2 uint32_t SplitX(const SplitTensor& p, uint32_t row, const float* x, float* buffer) {
  const uint32_t* bitmap = p.RowBitmap(row);
  const uint32_t cols = p.cols;
  float* inliers = buffer;
  float* outliers = buffer + cols;
  uint32_t c = 0;
  for (; c + 40 <= cols; c += 32) {
    const uint32_t word = bitmap[c / 32u];
    SplitEight(word & 0xFFu, x + c, inliers, outliers);
    SplitEight((word >> 8) & 0xFFu, x + c + 8, inliers, outliers);
    SplitEight((word >> 16) & 0xFFu, x + c + 16, inliers, outliers);
    SplitEight(word >> 24, x + c + 24, inliers, outliers);
  }
  for (; c + 16 <= cols; c += 8) SplitEight((bitmap[c / 32u] >> (c % 32u)) & 0xFFu, x + c, inliers, outliers);
  for (; c < cols; c += 8) {
    const uint32_t n = cols - c < 8 ? cols - c : 8;
    SplitLastEight((bitmap[c / 32u] >> (c % 32u)) & ((1u << n) - 1u), n, x + c, inliers, outliers);
  }
  return static_cast<uint32_t>(inliers - buffer);
}

// Lane shifts that cut codes [k, k + count) of a stream from the windows
// at code k (`first`) and k + 4 (`second`: 8 codes of more than 4 bits
// overflow one window), per count 0..8. Lane i holds code c = i, or with
// kReversed c = count − 1 − i; a lane with no code there shifts past 31,
// which vpsrlvd turns into 0.
template <uint32_t B, bool kReversed>
struct WindowShifts {
  struct alignas(32) Table {
    int32_t first[9][8];
    int32_t second[9][8];
  };
  static constexpr Table Make() {
    Table table{};
    for (int count = 0; count <= 8; ++count) {
      for (int i = 0; i < 8; ++i) {
        const int c = kReversed ? count - 1 - i : i;
        const bool in_first = c >= 0 && c < count && (B <= 4 || c < 4);
        const bool in_second = c >= 4 && c < count && B > 4;
        table.first[count][i] = in_first ? c * static_cast<int>(B) : 32;
        table.second[count][i] = in_second ? (c - 4) * static_cast<int>(B) : 32;
      }
    }
    return table;
  }
  static constexpr Table kTable = Make();
};

// d += (codes [k, k + count) − zero)·their x (count ≤ 8), the codes cut from
// windows at stream bit `bit`; the x of lanes past count are read as 0
// (masked: they may lie outside the buffer).
template <uint32_t B, uint32_t S, bool kReversed>
QMC_AVX2 inline __m256 WindowFma(const StreamWindows<S>& s, uint32_t bit, const float* x, uint32_t k, uint32_t count,
                                 __m256 zero, __m256 d) {
  using Shifts = WindowShifts<B, kReversed>;
  // In column order, lanes past count may as well cut the next codes (their
  // x is 0): the shifts stay one constant.
  const uint32_t row = kReversed ? count : 8;
  const uint32_t second = bit + 4 * B;
  const bool fast = s.IsFast(B > 4 ? second : bit);
  const uint32_t first_window = fast ? s.Fast(bit) : s.Safe(bit);
  __m256i lanes =
      _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(first_window)), Load8(Shifts::kTable.first[row]));
  if constexpr (B > 4) {
    const uint32_t second_window = fast ? s.Fast(second) : s.Safe(second);
    lanes = _mm256_or_si256(lanes, _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(second_window)),
                                                      Load8(Shifts::kTable.second[row])));
  }
  const __m256 codes = CodesToFloats<B, false>(lanes, _mm256_setzero_si256());
  const float* at = kReversed ? x - k - count : x + k;
  const __m256 xs = count == 8 ? _mm256_loadu_ps(at) : _mm256_maskload_ps(at, FirstLanes(count));
  return _mm256_fmadd_ps(_mm256_sub_ps(codes, zero), xs, d);
}

// d += (codes [k + 8V, k + 8V + 8) − zero)·their x, the codes vector V of a
// whole period, its plan constant. Even and odd vectors add to different
// sums, so consecutive FMAs do not wait on each other.
template <uint32_t B, uint32_t S, bool kReversed, size_t V>
QMC_AVX2 inline void PlannedFma(const uint32_t* period, const float* x, uint32_t k, __m256 zero, __m256 (&d)[2]) {
  const __m256 codes = CodesToFloats<B, false>(PlannedLanes<B, S, kReversed, V>(period), _mm256_setzero_si256());
  const uint32_t first = k + 8 * static_cast<uint32_t>(V);
  const __m256 xs = _mm256_loadu_ps(kReversed ? x - first - 8 : x + first);
  d[V % 2] = _mm256_fmadd_ps(_mm256_sub_ps(codes, zero), xs, d[V % 2]);
}

template <uint32_t B, uint32_t S, bool kReversed, size_t... V>
QMC_AVX2 inline void PeriodFma(const uint32_t* period, const float* x, uint32_t k, __m256 zero, __m256 (&d)[2],
                               std::index_sequence<V...>) {
  (PlannedFma<B, S, kReversed, V>(period, x, k, zero, d), ...);
}

// Σ (code − zero)·x over codes [begin, begin + n) of a row's stream, lane-wise,
// code begin being code `first` of the whole stream. Codes up to the next
// superblock boundary (where words hold whole codes) are cut from windows,
// then whole periods by their compile-time plans, then windows again for
// the rest. x: code k's x is x[k − begin], or with kReversed x[begin − 1 − k].
template <uint32_t B, uint32_t S, bool kReversed>
QMC_AVX2 __m256 StreamDot(const StreamWindows<S>& s, uint64_t first, uint32_t begin, uint32_t n, const float* x,
                          __m256 zero) {
  using Pattern = LanePattern<B, S, kReversed>;
  constexpr uint32_t kSuperblock = Superblock<B, S>::kCodes;
  const uint32_t to_boundary = (kSuperblock - RemainderBy<kSuperblock>(first)) % kSuperblock;
  const uint32_t head = to_boundary < n ? to_boundary : n;
  __m256 d[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  uint32_t k = 0, bit = s.start() + begin * B;
  for (; k < head; k += 8, bit += 8 * B) {
    d[1] = WindowFma<B, S, kReversed>(s, bit, x, k, head - k < 8 ? head - k : 8, zero, d[1]);
  }
  k = head;
  bit = s.start() + (begin + head) * B;
  constexpr uint32_t kPeriod = Pattern::kCodes;
  for (; k + kPeriod <= n && s.HasWords(bit, Pattern::kWords); k += kPeriod, bit += kPeriod * B) {
    PeriodFma<B, S, kReversed>(s.WordAt(bit), x, k, zero, d, std::make_index_sequence<Pattern::kVectors>{});
  }
  for (; k < n; k += 8, bit += 8 * B) {
    d[0] = WindowFma<B, S, kReversed>(s, bit, x, k, n - k < 8 ? n - k : 8, zero, d[0]);
  }
  return _mm256_add_ps(d[0], d[1]);
}

// Σ_g scale_g·Σ (code − zero_g)·x over the row's n inliers, lane-wise, a
// group being `group_size` consecutive inliers (pair 1 + g).
template <uint32_t B, uint32_t S>
QMC_AVX2 __m256 InlierDot(const SplitTensor& p, uint32_t row, uint32_t group_size, const float* x, uint32_t n) {
  const uint64_t first = p.InlierFirst(row);
  const StreamWindows<S> stream(p.inlier_words, p.inlier_word_count, first * B);
  const uint8_t* scales = p.RowScales(row);
  __m256 sum = _mm256_setzero_ps();
  for (uint32_t g = 0, begin = 0; begin < n; ++g, begin += group_size) {
    const GroupScaleVectors s = AffineScaleVectors(scales, 1u + g);
    const uint32_t count = n - begin < group_size ? n - begin : group_size;
    sum = _mm256_fmadd_ps(s.scale, StreamDot<B, S, false>(stream, first + begin, begin, count, x + begin, s.zero), sum);
  }
  return sum;
}

// scale·Σ (code − zero)·x over the row's n outliers (pair 0), lane-wise;
// outlier j's x is x_end[−1 − j].
template <uint32_t B>
QMC_AVX2 __m256 OutlierDot(const SplitTensor& p, uint32_t row, const float* x_end, uint32_t n) {
  const uint64_t first = p.OutlierFirst(row);
  const StreamWindows<32> stream(p.outlier_words, p.outlier_word_count, first * B);
  const GroupScaleVectors s = AffineScaleVectors(p.RowScales(row), 0);
  return _mm256_mul_ps(s.scale, StreamDot<B, 32, true>(stream, first, 0, n, x_end, s.zero));
}

QMC_AVX2 __m256 OutlierDot(const SplitTensor& p, uint32_t row, uint32_t outlier_bits, const float* x_end, uint32_t n) {
  switch (outlier_bits) {
    case 4: return OutlierDot<4>(p, row, x_end, n);
    case 5: return OutlierDot<5>(p, row, x_end, n);
    case 6: return OutlierDot<6>(p, row, x_end, n);
    case 7: return OutlierDot<7>(p, row, x_end, n);
    default: return OutlierDot<8>(p, row, x_end, n);  // 8, the only other width a validated image holds
  }
}

template <uint32_t B, uint32_t S>
QMC_AVX2 void SplitMatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                          float* buffer) {
  const SplitTensor p(image, t);
  for (uint32_t r = 0; r < t.rows; ++r) {
    const uint32_t inliers = SplitX(p, r, x, buffer);
    const __m256 sum = InlierDot<B, S>(p, r, t.group_size, buffer, inliers);
    y[r] = HorizontalSum(_mm256_add_ps(sum, OutlierDot(p, r, t.outlier_bits, buffer + t.cols, t.cols - inliers)));
  }
}

QMC_AVX2 void SplitLayout(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                          float* buffer) {
  const bool full_words = StreamBitsPerWord(t.cell_bits) == 32;
  switch (t.bits) {
    case 2:
      return full_words ? SplitMatVec<2, 32>(image, t, x, y, buffer) : SplitMatVec<2, 30>(image, t, x, y, buffer);
    case 3:
      return full_words ? SplitMatVec<3, 32>(image, t, x, y, buffer) : SplitMatVec<3, 30>(image, t, x, y, buffer);
    default:  // 4, the only other width a validated image holds
      return full_words ? SplitMatVec<4, 32>(image, t, x, y, buffer) : SplitMatVec<4, 30>(image, t, x, y, buffer);
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
    case image::Scheme::kGroupAffine: return PackedMatVec<false, AffineScaleVectors>(image, t, x, y, row_buffer);
    case image::Scheme::kMxInt4: return PackedMatVec<true, MxScaleVectors>(image, t, x, y, row_buffer);
    case image::Scheme::kSplit: return SplitLayout(image, t, x, y, row_buffer);
  }
}

// The batched product is a register-blocked microkernel: a tile of decoded
// rows (f32 rows in place) is dotted with the inputs 4 rows × 3 inputs at a
// time, 12 accumulators, so each 8 columns cost 4 weight and 3 input loads
// for 12 FMAs. The tile stays in L1 while every input streams past it, so
// each row is decoded once per MatMul.
constexpr uint32_t kTileRows = 4;
constexpr uint32_t kTileInputs = 3;
constexpr uint32_t kTileFloats = 4096;  // 16 KiB of decoded rows on the stack, a third of L1

// The 4 sums of a, one per vector, in lanes 0..3.
QMC_AVX2 inline __m128 SumFour(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// y[i * y_stride + r] = w row r · x input i, for R rows w_stride apart and
// N inputs x_stride apart; the last partial 8 columns read masked.
template <uint32_t R, uint32_t N>
QMC_AVX2 void DotTile(const float* w, size_t w_stride, uint32_t cols, const float* x, size_t x_stride, float* y,
                      size_t y_stride) {
  __m256 acc[R][N];
  for (uint32_t r = 0; r < R; ++r) {
    for (uint32_t i = 0; i < N; ++i) acc[r][i] = _mm256_setzero_ps();
  }
  uint32_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    __m256 xs[N];
    for (uint32_t i = 0; i < N; ++i) xs[i] = _mm256_loadu_ps(x + i * x_stride + c);
    for (uint32_t r = 0; r < R; ++r) {
      const __m256 ws = _mm256_loadu_ps(w + r * w_stride + c);
      for (uint32_t i = 0; i < N; ++i) acc[r][i] = _mm256_fmadd_ps(ws, xs[i], acc[r][i]);
    }
  }
  if (c < cols) {
    const __m256i m = FirstLanes(cols - c);
    __m256 xs[N];
    for (uint32_t i = 0; i < N; ++i) xs[i] = _mm256_maskload_ps(x + i * x_stride + c, m);
    for (uint32_t r = 0; r < R; ++r) {
      const __m256 ws = _mm256_maskload_ps(w + r * w_stride + c, m);
      for (uint32_t i = 0; i < N; ++i) acc[r][i] = _mm256_fmadd_ps(ws, xs[i], acc[r][i]);
    }
  }
  for (uint32_t i = 0; i < N; ++i) {
    if constexpr (R == 4) {  // the 4 rows' outputs are adjacent in y
      _mm_storeu_ps(y + i * y_stride, SumFour(acc[0][i], acc[1][i], acc[2][i], acc[3][i]));
    } else {
      for (uint32_t r = 0; r < R; ++r) y[i * y_stride + r] = HorizontalSum(acc[r][i]);
    }
  }
}

template <uint32_t R>
constexpr DotRowsTile kTileRow[kTileInputs] = {DotTile<R, 1>, DotTile<R, 2>, DotTile<R, 3>};
// kDotTiles[R − 1][N − 1] = DotTile<R, N>: the full tile and the edges.
constexpr const DotRowsTile* kDotTiles[kTileRows] = {kTileRow<1>, kTileRow<2>, kTileRow<3>, kTileRow<4>};

// Row r of a group-affine or mxint4 tensor as image::DequantizeRow decodes
// it, to the bit: codes unpacked a vector at a time, (code − zero) · scale
// per group, then the CSR outliers added.
template <GroupScale (*kScaleOf)(const uint8_t*, uint32_t)>
QMC_AVX2 void DecodePackedRow(const PackedTensor& p, const image::TensorEntry& t, uint32_t flip, uint32_t r,
                              float* out) {
  Unpack(p.RowWords(r), t.cols, t.bits, t.cell_bits, flip, out);
  const uint8_t* scales = p.RowScales(r);
  for (uint32_t first = 0, g = 0; first < t.cols; first += t.group_size, ++g) {
    const GroupScale s = kScaleOf(scales, g);
    const uint32_t end = first + t.group_size < t.cols ? first + t.group_size : t.cols;
    for (uint32_t c = first; c < end; ++c) out[c] = (out[c] - s.zero) * s.scale;
  }
  if (p.outliers == nullptr) return;
  const uint32_t end = LoadU32(p.outliers + (r + 1u) * 4u);
  const uint8_t* entries = p.outliers + (t.rows + 1u) * 4u;
  for (uint32_t k = LoadU32(p.outliers + r * 4u); k < end; ++k) {
    const uint32_t col = LoadU16(entries + k * 4u);
    if (col < t.cols) out[col] += HalfToFloat(LoadU16(entries + k * 4u + 2u));
  }
}

// An fp16 row through F16C.
QMC_AVX2 void DecodeF16Row(const uint16_t* w, uint32_t cols, float* out) {
  uint32_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    _mm256_storeu_ps(out + c, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + c))));
  }
  for (; c < cols; ++c) out[c] = FastHalfToFloat(w[c]);
}

// A split row as image::DequantizeRow decodes it, the two code streams read
// in order (CodeStream) and each scale pair converted once. A row whose
// bitmap disagrees with the outlier index (an MRAM read error; a validated
// image has none) would read past its codes: DequantizeRow, which reads
// code by code within the streams, decodes it instead.
QMC_AVX2 void DecodeSplitRow(const image::ImageView& image, const image::TensorEntry& t, const SplitTensor& p,
                             uint32_t r, float* out) {
  const uint32_t* bitmap = p.RowBitmap(r);
  uint32_t outliers = 0;
  for (uint32_t w = 0; w < p.bitmap_words; ++w) outliers += static_cast<uint32_t>(std::popcount(bitmap[w] & p.ColumnMask(w)));
  const uint64_t first = p.OutlierFirst(r);
  const uint64_t next = r + 1 < t.rows ? p.OutlierFirst(r + 1) : t.outlier_count;
  if (next < first || next - first != outliers) return image::DequantizeRow(image, t, r, out);
  CodeStream inlier_codes(p.inlier_words, p.InlierFirst(r), t.bits, t.cell_bits);
  CodeStream outlier_codes(p.outlier_words, first, t.outlier_bits, 1);
  const uint8_t* scales = p.RowScales(r);
  const GroupScale outlier_scale = AffineScale(scales, 0);
  GroupScale s = AffineScale(scales, 1);
  for (uint32_t c = 0, inliers = 0; c < t.cols; ++c) {
    if ((bitmap[c / 32u] >> (c % 32u)) & 1u) {
      out[c] = (static_cast<float>(outlier_codes.Next()) - outlier_scale.zero) * outlier_scale.scale;
    } else {
      out[c] = (static_cast<float>(inlier_codes.Next()) - s.zero) * s.scale;
      if (++inliers % t.group_size == 0 && c + 1 < t.cols) s = AffineScale(scales, 1u + inliers / t.group_size);
    }
  }
}

// Rows of W decoded by `decode(r, out)` a tile at a time into a stack tile
// of kTileFloats (rows wider than it one at a time into row_buffer), each
// tile dotted with all n inputs.
template <typename Decode>
QMC_AVX2 void DecodedMatMul(const image::TensorEntry& t, Decode decode, const float* x, size_t x_stride, float* y,
                            size_t y_stride, uint32_t n, float* row_buffer, DotRowsFunction dot_rows) {
  alignas(32) float tile[kTileFloats];
  const uint32_t tile_rows = t.cols <= kTileFloats ? kTileFloats / t.cols : 1;
  float* rows_out = t.cols <= kTileFloats ? tile : row_buffer;
  for (uint32_t r = 0; r < t.rows; r += tile_rows) {
    const uint32_t rows = t.rows - r < tile_rows ? t.rows - r : tile_rows;
    for (uint32_t k = 0; k < rows; ++k) decode(r + k, rows_out + k * t.cols);
    dot_rows(rows_out, t.cols, rows, t.cols, x, x_stride, n, y + r, y_stride);
  }
}

// f32 rows are dotted in place, in row blocks the size of a decoded tile
// (so they stay in L1 likewise); the others are decoded: group-affine and
// mxint4 rows unpacked by vector, fp16 by F16C, split rows stream by stream.
QMC_AVX2 void MatMul(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride,
                     float* y, size_t y_stride, uint32_t n, float* row_buffer, DotRowsFunction dot_rows) {
  switch (static_cast<image::Scheme>(t.scheme)) {
    case image::Scheme::kF32: {
      const auto* w = reinterpret_cast<const float*>(image.blob(t.data).data());
      const uint32_t block = t.cols <= kTileFloats / kTileRows ? kTileFloats / t.cols / kTileRows * kTileRows : kTileRows;
      for (uint32_t r = 0; r < t.rows; r += block) {
        const uint32_t rows = t.rows - r < block ? t.rows - r : block;
        dot_rows(w + static_cast<size_t>(r) * t.cols, t.cols, rows, t.cols, x, x_stride, n, y + r, y_stride);
      }
      return;
    }
    case image::Scheme::kGroupAffine: {
      const PackedTensor p(image, t);
      const auto decode = [&](uint32_t r, float* out) { DecodePackedRow<AffineScale>(p, t, 0u, r, out); };
      return DecodedMatMul(t, decode, x, x_stride, y, y_stride, n, row_buffer, dot_rows);
    }
    case image::Scheme::kMxInt4: {
      const PackedTensor p(image, t);
      const auto decode = [&](uint32_t r, float* out) { DecodePackedRow<MxScale>(p, t, kMxCodeFlip, r, out); };
      return DecodedMatMul(t, decode, x, x_stride, y, y_stride, n, row_buffer, dot_rows);
    }
    case image::Scheme::kF16: {
      const auto* w = reinterpret_cast<const uint16_t*>(image.blob(t.data).data());
      const auto decode = [&](uint32_t r, float* out) { DecodeF16Row(w + static_cast<size_t>(r) * t.cols, t.cols, out); };
      return DecodedMatMul(t, decode, x, x_stride, y, y_stride, n, row_buffer, dot_rows);
    }
    case image::Scheme::kSplit: {
      const SplitTensor p(image, t);
      const auto decode = [&](uint32_t r, float* out) { DecodeSplitRow(image, t, p, r, out); };
      return DecodedMatMul(t, decode, x, x_stride, y, y_stride, n, row_buffer, dot_rows);
    }
  }
}

}  // namespace

// The entry points are baseline functions: GCC treats a target attribute on
// a definition as a separate version of the function it declares.
bool Avx2Supported() {
  __builtin_cpu_init();
  // F16C from CPUID leaf 1 (ECX bit 29): clang 14 has no "f16c" for __builtin_cpu_supports.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}

float DotAvx2(const float* a, const float* b, uint32_t n) { return Dot(a, b, n); }

void AxpyAvx2(float a, const float* x, float* y, uint32_t n) { Axpy(a, x, y, n); }

void UnpackCodesAvx2(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                     float* out) {
  Unpack(row_words, cols, bits, cell_bits, flip, out);
}

void MatVecAvx2(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer) {
  MatVec(image, t, x, y, row_buffer);
}

void DotRowsAvx2(const float* w, size_t w_stride, uint32_t rows, uint32_t cols, const float* x, size_t x_stride,
                 uint32_t n, float* y, size_t y_stride) {
  DotRowsInTiles(kDotTiles, kTileRows, kTileInputs, w, w_stride, rows, cols, x, x_stride, n, y, y_stride);
}

void MatMulAvx2(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
                size_t y_stride, uint32_t n, float* row_buffer, DotRowsFunction dot_rows) {
  MatMul(image, t, x, x_stride, y, y_stride, n, row_buffer, dot_rows);
}

}  // namespace qmc::kernels
