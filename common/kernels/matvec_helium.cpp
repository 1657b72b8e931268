#include "common/kernels/matvec_helium.h"

#include <arm_mve.h>

#include <cstddef>
#include <utility>

#include "common/kernels/packed_tensor.h"
#include "common/kernels/split_columns.h"
#include "common/kernels/stream_window.h"
#include "common/kernels/unpack_codes.h"

#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 2)
#error "matvec_helium.cpp needs MVE with floating point (e.g. -mcpu=cortex-m55)"
#endif

namespace qmc::kernels {
namespace {

constexpr uint32_t Lcm(uint32_t a, uint32_t b) { return a / Gcd(a, b) * b; }

// The per-vector helpers must inline at every optimisation level (the m55
// preset builds for size): only inlined do a vector's plan and the
// constants it loads become compile-time, and the vectors stay in registers.
#define QMC_HELIUM_INLINE [[gnu::always_inline]] inline

// How a vector of 4 consecutive codes is cut from the row: with a and b the
// words at `base` and `base + 1`, lane j is (a << shift_a[j]) | (b << shift_b[j]),
// shifts signed as VSHL takes them (negative: right). A shift by 32 either
// way gives 0, which is how a lane ignores a word; a code straddling a and b
// takes its low bits from a and its high bits from b.
struct alignas(16) LanePlan {
  int32_t shift_a[4];
  int32_t shift_b[4];
  uint32_t base;
  bool reads_b;    // some lane takes bits from b
  bool straddles;  // some lane's code continues from a into b
};

// The plans repeat every lcm(codes per superblock, 4) codes: e.g. 8 vectors
// over 3 words for (3 bits, 32-bit words), 15 vectors over 8 words for
// (4 bits, 30-bit words). With kReversed a vector's lanes hold its 4 codes
// in reverse order (the split scheme's outliers, whose x are reversed).
template <uint32_t B, uint32_t S, bool kReversed = false>
struct LanePattern {
  static constexpr uint32_t kCodes = Lcm(Superblock<B, S>::kCodes, 4);
  static constexpr uint32_t kWords = kCodes * B / S;
  static constexpr uint32_t kVectors = kCodes / 4;
  struct Plans {
    LanePlan vector[kVectors];
  };

  static constexpr Plans Make() {
    Plans plans{};
    for (uint32_t v = 0; v < kVectors; ++v) {
      LanePlan& plan = plans.vector[v];
      plan.base = 4 * v * B / S;
      for (uint32_t j = 0; j < 4; ++j) {
        const uint32_t first = (4 * v + (kReversed ? 3 - j : j)) * B;
        const auto offset = static_cast<int32_t>(first % S);
        const bool in_b = first / S > plan.base;
        const bool straddles = !in_b && first % S + B > S;
        plan.shift_a[j] = in_b ? -32 : -offset;
        plan.shift_b[j] = in_b ? -offset : straddles ? static_cast<int32_t>(S) - offset : -32;
        plan.reads_b = plan.reads_b || in_b || straddles;
        plan.straddles = plan.straddles || straddles;
      }
    }
    return plans;
  }
  static constexpr Plans kPlans = Make();
};

// The plan's 4 codes, not yet masked to B bits. Nothing past word base + 1
// is read, and b only when a lane needs it, so a row's last vector stays
// inside the row.
template <uint32_t S>
QMC_HELIUM_INLINE uint32x4_t CutLanes(const uint32_t* words, const LanePlan& plan, bool reads_b, bool straddles) {
  uint32_t a = words[plan.base];
  // A 30-bit word's top bits are not stream bits; only a straddling code
  // shifts them into its lane.
  if (S != 32 && straddles) a &= (1u << S) - 1u;
  uint32x4_t lanes = vshlq_u32(vdupq_n_u32(a), vld1q_s32(plan.shift_a));
  if (reads_b) lanes = vorrq_u32(lanes, vshlq_u32(vdupq_n_u32(words[plan.base + 1]), vld1q_s32(plan.shift_b)));
  return lanes;
}

QMC_HELIUM_INLINE float HorizontalSum(float32x4_t v) {
  return (vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1)) + (vgetq_lane_f32(v, 2) + vgetq_lane_f32(v, 3));
}

// A vector's tail lanes are predicated off: they read no memory and leave
// the sum alone.
float Dot(const float* a, const float* b, uint32_t n) {
  float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
  }
  for (; i < n; i += 4) {
    const mve_pred16_t p = vctp32q(n - i);
    s0 = vfmaq_m_f32(s0, vld1q_z_f32(a + i, p), vld1q_z_f32(b + i, p), p);
  }
  return HorizontalSum(vaddq_f32(s0, s1));
}

// y += a · x, fused; tail lanes predicated off as in Dot.
void Axpy(float a, const float* x, float* y, uint32_t n) {
  for (uint32_t i = 0; i < n; i += 4) {
    const mve_pred16_t p = vctp32q(n - i);
    vstrwq_p_f32(y + i, vfmaq_n_f32(vld1q_z_f32(y + i, p), vld1q_z_f32(x + i, p), a), p);
  }
}

// VCVTB/VCVTT.F32.F16 (each 32-bit lane's bottom or top half to f32), by
// encoding: Debian 12's assembler (binutils 2.40) puts their destination
// register field one bit too high (q1 becomes q2), so the arm_mve.h
// intrinsics write a wrong register unless the compiler picked q0. The
// encoding is 0xfe3f0e01 | Qd << 13 | T << 12 | Qm << 1; here Qm = q0, Qd = q1.
QMC_HELIUM_INLINE float32x4_t WidenBottomHalves(uint32x4_t lanes) {
  register uint32x4_t in asm("q0") = lanes;
  register float32x4_t out asm("q1");
  asm(".inst.w 0xfe3f2e01" : "=w"(out) : "w"(in));  // vcvtb.f32.f16 q1, q0
  return out;
}
QMC_HELIUM_INLINE float32x4_t WidenTopHalves(uint32x4_t lanes) {
  register uint32x4_t in asm("q0") = lanes;
  register float32x4_t out asm("q1");
  asm(".inst.w 0xfe3f3e01" : "=w"(out) : "w"(in));  // vcvtt.f32.f16 q1, q0
  return out;
}

// 4 halves widened to 32-bit lanes, then converted.
QMC_HELIUM_INLINE float32x4_t LoadHalves(const uint16_t* w) { return WidenBottomHalves(vldrhq_u32(w)); }
QMC_HELIUM_INLINE float32x4_t LoadHalves(const uint16_t* w, mve_pred16_t p) { return WidenBottomHalves(vldrhq_z_u32(w, p)); }

float DotF16(const uint16_t* w, const float* x, uint32_t n) {
  float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = vfmaq_f32(s0, LoadHalves(w + i), vld1q_f32(x + i));
    s1 = vfmaq_f32(s1, LoadHalves(w + i + 4), vld1q_f32(x + i + 4));
  }
  for (; i < n; i += 4) {
    const mve_pred16_t p = vctp32q(n - i);
    s0 = vfmaq_m_f32(s0, LoadHalves(w + i, p), vld1q_z_f32(x + i, p), p);
  }
  return HorizontalSum(vaddq_f32(s0, s1));
}

// A group's scale and zero in every lane.
struct GroupScaleVectors {
  float32x4_t scale;
  float32x4_t zero;
};

// Group-affine: the {fp16 scale, fp16 zero} word in every lane, its bottom
// and top halves widened: two instructions instead of two scalar conversions.
QMC_HELIUM_INLINE GroupScaleVectors AffineScaleVectors(const uint8_t* row_scales, uint32_t group) {
  const uint32x4_t pair = vdupq_n_u32(LoadU32(row_scales + group * 4u));
  return {WidenBottomHalves(pair), WidenTopHalves(pair)};
}

// Σ value·x[col] over the row's outliers, four entries per vector: each
// {u16 col, fp16 value} entry is one 32-bit lane, its column the low half
// (the gather offset) and its value the high half (VCVTT). A column past
// the row (an MRAM read error) drops its lane, as PackedTensor::OutlierDot does.
float OutlierDot(const PackedTensor& p, uint32_t row, const float* x) {
  if (p.outliers == nullptr) return 0.0f;
  const uint32_t end = LoadU32(p.outliers + (row + 1u) * 4u);
  const auto* entries = reinterpret_cast<const uint32_t*>(p.outliers + (p.rows + 1u) * 4u);
  const uint32x4_t cols = vdupq_n_u32(p.cols);
  float32x4_t sum = vdupq_n_f32(0.0f);
  for (uint32_t k = LoadU32(p.outliers + row * 4u); k < end; k += 4) {
    const uint32x4_t entry = vld1q_z_u32(entries + k, vctp32q(end - k));
    const uint32x4_t col = vandq_u32(entry, vdupq_n_u32(0xFFFFu));
    const mve_pred16_t active = vctp32q(end - k) & vcmphiq_u32(cols, col);
    const float32x4_t xs = vldrwq_gather_shifted_offset_z_f32(x, col, active);
    sum = vfmaq_m_f32(sum, WidenTopHalves(entry), xs, active);
  }
  return HorizontalSum(sum);
}

// Group-affine and mxint4, fused: four rows at a time, one per lane. Rows
// start on a word, so code k of the four rows sits at the same bit of their
// streams: one gather (the rows' word offsets) loads a word of all four, and
// every code is cut by the same immediate shifts, its x broadcast from a
// scalar (VFMA by a scalar). Per code column: the cut (1 to 3), VCVT, the
// x load, VFMA. No row is unpacked first. The affine zero comes off once
// per group: Σ (code − zero)·x = Σ code·x − zero·Σ x, Σ x over the group's
// columns being the same for every row (x_sums, once per matvec).
//
// A period is the fewest words holding whole codes (Superblock): whole
// periods run unrolled with compile-time shifts; codes past the last whole
// period (and, for groups shorter than a period, near a group boundary)
// take shifts at run time (CodesAt). Rows past the tensor's last (its
// last < 4) read the last row again and are not stored.

// The code at stream bit `off` of word vector `lo` (`hi` the next word's, for
// a code that straddles), in the low bits, as an integer: unsigned, or with
// kSigned the two's complement of its B bits (mxint4).
template <uint32_t B, uint32_t S, bool kSigned, uint32_t kOff>
QMC_HELIUM_INLINE float32x4_t CutCode(uint32x4_t lo, uint32x4_t hi, uint32x4_t mask) {
  uint32x4_t v = lo;
  if constexpr (kOff + B > S) {  // straddles: VSLI keeps lo's S − kOff stream bits and clears the rest
    v = vsliq_n_u32(vshrq_n_u32(lo, kOff), hi, S - kOff);
  } else if constexpr (kSigned) {  // the code to the top, for the sign extension below
    if constexpr (kOff + B < 32) v = vshlq_n_u32(lo, 32 - B - kOff);
  } else if constexpr (kOff > 0) {
    v = vshrq_n_u32(lo, kOff);
  }
  if constexpr (kSigned) {
    if constexpr (kOff + B > S) v = vshlq_n_u32(v, 32 - B);
    return vcvtq_f32_s32(vshrq_n_s32(vreinterpretq_s32_u32(v), 32 - B));
  } else if constexpr (kOff + B == 32 && S == 32) {  // nothing above the code
    return vcvtq_f32_u32(v);
  } else {
    return vcvtq_f32_u32(vandq_u32(v, mask));
  }
}

// Code J of a period of the four rows, as a float.
template <uint32_t B, uint32_t S, bool kSigned, uint32_t J>
QMC_HELIUM_INLINE float32x4_t PeriodCodeOf(const uint32_t* period, uint32x4_t rows, uint32x4_t mask) {
  constexpr uint32_t kWord = J * B / S, kOff = J * B % S;
  const uint32x4_t lo = vldrwq_gather_shifted_offset_u32(period + kWord, rows);
  uint32x4_t hi = lo;
  if constexpr (kOff + B > S) hi = vldrwq_gather_shifted_offset_u32(period + kWord + 1, rows);
  return CutCode<B, S, kSigned, kOff>(lo, hi, mask);
}

template <uint32_t B, uint32_t S, bool kSigned, uint32_t J>
QMC_HELIUM_INLINE void PeriodCode(const uint32_t* period, uint32x4_t rows, const float* x, uint32x4_t mask,
                                  float32x4_t& acc) {
  const float32x4_t code = PeriodCodeOf<B, S, kSigned, J>(period, rows, mask);
  acc = vfmaq_n_f32(acc, code, x[J]);
}

template <uint32_t B, uint32_t S, bool kSigned, size_t... J>
QMC_HELIUM_INLINE void Period(const uint32_t* period, uint32x4_t rows, const float* x, uint32x4_t mask,
                              float32x4_t& acc, std::index_sequence<J...>) {
  (PeriodCode<B, S, kSigned, J>(period, rows, x, mask, acc), ...);
}

// A period a group boundary cuts at code `split`: codes before it go to
// acc (their group's sum), the rest to next (the next group's). Cheaper
// than cutting them at run time (CodesAt), which 30-bit words would do for
// about a quarter of a row: their periods (15 codes of 2 or 4 bits, 10 of
// 3) never align with groups of 64.
template <uint32_t B, uint32_t S, bool kSigned, uint32_t J>
QMC_HELIUM_INLINE void SplitPeriodCode(const uint32_t* period, uint32x4_t rows, const float* x, uint32_t split,
                                       uint32x4_t mask, float32x4_t& acc, float32x4_t& next) {
  const float32x4_t code = PeriodCodeOf<B, S, kSigned, J>(period, rows, mask);
  if (J < split) {
    acc = vfmaq_n_f32(acc, code, x[J]);
  } else {
    next = vfmaq_n_f32(next, code, x[J]);
  }
}

template <uint32_t B, uint32_t S, bool kSigned, size_t... J>
QMC_HELIUM_INLINE void SplitPeriod(const uint32_t* period, uint32x4_t rows, const float* x, uint32_t split,
                                   uint32x4_t mask, float32x4_t& acc, float32x4_t& next, std::index_sequence<J...>) {
  (SplitPeriodCode<B, S, kSigned, J>(period, rows, x, split, mask, acc, next), ...);
}

// Codes [k, end) of the four rows, shifts at run time; nothing past the
// word holding code end − 1 is read.
template <uint32_t B, uint32_t S, bool kSigned>
float32x4_t CodesAt(const uint32_t* words, uint32x4_t rows, uint32_t k, uint32_t end, const float* x,
                    float32x4_t acc) {
  const uint32_t first = k * B;
  uint32_t w = first / S, off = first % S;
  for (; k < end; ++k) {
    uint32x4_t v = vldrwq_gather_shifted_offset_u32(words + w, rows);
    if (S != 32) v = vandq_u32(v, vdupq_n_u32((1u << S) - 1u));
    v = vshlq_u32(v, vdupq_n_s32(-static_cast<int32_t>(off)));
    if (off + B > S) {
      const uint32x4_t hi = vldrwq_gather_shifted_offset_u32(words + w + 1, rows);
      v = vorrq_u32(v, vshlq_u32(hi, vdupq_n_s32(static_cast<int32_t>(S - off))));
    }
    float32x4_t code;
    if constexpr (kSigned) {
      code = vcvtq_f32_s32(vshrq_n_s32(vreinterpretq_s32_u32(vshlq_n_u32(v, 32 - B)), 32 - B));
    } else {
      code = vcvtq_f32_u32(vandq_u32(v, vdupq_n_u32((1u << B) - 1u)));
    }
    acc = vfmaq_n_f32(acc, code, x[k]);
    off += B;
    if (off >= S) {
      off -= S;
      ++w;
    }
  }
  return acc;
}

// Four rows' scales of group g: offsets are the rows' byte offsets in the
// scale blob.
QMC_HELIUM_INLINE GroupScaleVectors AffineGroup(const uint8_t* scales, uint32x4_t offsets, uint32_t g) {
  const uint32x4_t pair = vldrwq_gather_offset_u32(reinterpret_cast<const uint32_t*>(scales + g * 4u), offsets);
  return {WidenBottomHalves(pair), WidenTopHalves(pair)};
}

// mxint4: E8M0 per block (quant::E8M0ToFloat: e << 23, and 2^−127 for e = 0);
// the signed codes need no zero.
QMC_HELIUM_INLINE GroupScaleVectors MxGroup(const uint8_t* scales, uint32x4_t offsets, uint32_t g) {
  const uint32x4_t e = vldrbq_gather_offset_u32(scales + g, offsets);
  const uint32x4_t bits = vpselq_u32(vdupq_n_u32(0x00400000u), vshlq_n_u32(e, 23), vcmpeqq_n_u32(e, 0));
  return {vreinterpretq_f32_u32(bits), vdupq_n_f32(0.0f)};
}

template <bool kSigned>
QMC_HELIUM_INLINE GroupScaleVectors Group(const uint8_t* scales, uint32x4_t offsets, uint32_t g) {
  return kSigned ? MxGroup(scales, offsets, g) : AffineGroup(scales, offsets, g);
}

// A group's Σ code·x less zero·Σ x (affine; mxint4 has no zero).
template <bool kSigned>
QMC_HELIUM_INLINE float32x4_t LessZero(float32x4_t acc, GroupScaleVectors s, const float* x_sums, uint32_t g) {
  if constexpr (kSigned) return acc;
  return vfmsq_f32(acc, s.zero, vdupq_n_f32(x_sums[g]));
}

template <uint32_t B, uint32_t S, bool kSigned>
void FourRows(const PackedTensor& p, uint32_t group_size, uint32_t r, const float* x, const float* x_sums,
              float* y) {
  using Block = Superblock<B, S>;
  constexpr uint32_t kP = Block::kCodes;
  const uint32_t last = p.rows - r - 1 < 3 ? p.rows - r - 1 : 3;
  const uint32x4_t lane = vminq_u32(vidupq_n_u32(0, 1), vdupq_n_u32(last));
  const uint32x4_t rows = vmulq_n_u32(lane, p.words_per_row);
  const uint32x4_t scale_offsets = vmulq_n_u32(lane, p.scale_bytes_per_row);
  const uint32x4_t mask = vdupq_n_u32((1u << B) - 1u);
  const uint32_t* words = p.RowWords(r);
  const uint8_t* scales = p.RowScales(r);
  const uint32_t cols = p.cols;
  float32x4_t sum = vdupq_n_f32(0.0f);
  if (group_size >= kP) {
    // Period by period: a group boundary cuts one period at most. The codes
    // after the last whole period (fewer than kP) are cut at run time.
    uint32_t g = 0, k = 0, group_end = cols < group_size ? cols : group_size;
    GroupScaleVectors s = Group<kSigned>(scales, scale_offsets, 0);
    float32x4_t acc = vdupq_n_f32(0.0f);
    while (k < cols) {
      if (k + kP <= cols) {
        const uint32_t* period = words + k / kP * Block::kWords;
        if (k + kP <= group_end) {
          Period<B, S, kSigned>(period, rows, x + k, mask, acc, std::make_index_sequence<kP>{});
        } else {  // the group ends inside the period; the next ends past it
          float32x4_t next = vdupq_n_f32(0.0f);
          SplitPeriod<B, S, kSigned>(period, rows, x + k, group_end - k, mask, acc, next,
                                     std::make_index_sequence<kP>{});
          sum = vfmaq_f32(sum, LessZero<kSigned>(acc, s, x_sums, g), s.scale);
          acc = next;
          s = Group<kSigned>(scales, scale_offsets, ++g);
          group_end = cols - group_end < group_size ? cols : group_end + group_size;
        }
        k += kP;
      } else {
        acc = CodesAt<B, S, kSigned>(words, rows, k, group_end, x, acc);
        k = group_end;
      }
      if (k < group_end) continue;
      sum = vfmaq_f32(sum, LessZero<kSigned>(acc, s, x_sums, g), s.scale);
      acc = vdupq_n_f32(0.0f);
      if (k < cols) {
        s = Group<kSigned>(scales, scale_offsets, ++g);
        group_end = cols - group_end < group_size ? cols : group_end + group_size;
      }
    }
    vstrwq_p_f32(y + r, sum, vctp32q(last + 1));
    return;
  }
  // Groups shorter than a period: group by group.
  for (uint32_t g = 0, k = 0; k < cols; ++g) {
    const GroupScaleVectors s = Group<kSigned>(scales, scale_offsets, g);
    const uint32_t end = cols - k < group_size ? cols : k + group_size;
    float32x4_t acc = vdupq_n_f32(0.0f);
    // Up to the first period boundary, whole periods, the rest.
    const uint32_t head = (kP - k % kP) % kP;
    const uint32_t body = end - k < head ? end : k + head;
    if (k < body) acc = CodesAt<B, S, kSigned>(words, rows, k, body, x, acc);
    for (k = body; k + kP <= end; k += kP) {
      Period<B, S, kSigned>(words + k / kP * Block::kWords, rows, x + k, mask, acc, std::make_index_sequence<kP>{});
    }
    if (k < end) acc = CodesAt<B, S, kSigned>(words, rows, k, end, x, acc);
    k = end;
    sum = vfmaq_f32(sum, LessZero<kSigned>(acc, s, x_sums, g), s.scale);
  }
  vstrwq_p_f32(y + r, sum, vctp32q(last + 1));
}

// x_sums[g] = Σ x over group g's columns, for g < ⌈cols / group_size⌉.
void GroupSums(const float* x, uint32_t cols, uint32_t group_size, float* x_sums) {
  for (uint32_t g = 0, k = 0; k < cols; ++g, k += group_size) {
    const uint32_t n = cols - k < group_size ? cols - k : group_size;
    float32x4_t s = vdupq_n_f32(0.0f);
    for (uint32_t i = 0; i < n; i += 4) s = vaddq_m_f32(s, s, vld1q_z_f32(x + k + i, vctp32q(n - i)), vctp32q(n - i));
    x_sums[g] = HorizontalSum(s);
  }
}

// `buffer` (cols floats) holds the group sums of x.
template <uint32_t B, uint32_t S, bool kSigned>
void PackedMatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                  float* buffer) {
  const PackedTensor p(image, t);
  if (!kSigned) GroupSums(x, t.cols, t.group_size, buffer);
  for (uint32_t r = 0; r < t.rows; r += 4) FourRows<B, S, kSigned>(p, t.group_size, r, x, buffer, y);
  if (p.outliers == nullptr) return;
  // Most rows have none: four at a time are skipped without a call.
  for (uint32_t r = 0; r < t.rows; r += 4) {
    const uint32_t end = t.rows - r < 4 ? t.rows : r + 4;
    if (LoadU32(p.outliers + r * 4u) == LoadU32(p.outliers + end * 4u)) continue;
    for (uint32_t i = r; i < end; ++i) y[i] += OutlierDot(p, i, x);
  }
}

void PackedLayout(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                  float* buffer) {
  const bool full_words = StreamBitsPerWord(t.cell_bits) == 32;
  if (t.scheme == static_cast<uint8_t>(image::Scheme::kMxInt4)) {  // 4-bit codes
    return full_words ? PackedMatVec<4, 32, true>(image, t, x, y, buffer)
                      : PackedMatVec<4, 30, true>(image, t, x, y, buffer);
  }
  switch (t.bits) {
    case 2:
      return full_words ? PackedMatVec<2, 32, false>(image, t, x, y, buffer)
                        : PackedMatVec<2, 30, false>(image, t, x, y, buffer);
    case 3:
      return full_words ? PackedMatVec<3, 32, false>(image, t, x, y, buffer)
                        : PackedMatVec<3, 30, false>(image, t, x, y, buffer);
    default:  // 4, the only other width a validated image holds
      return full_words ? PackedMatVec<4, 32, false>(image, t, x, y, buffer)
                        : PackedMatVec<4, 30, false>(image, t, x, y, buffer);
  }
}

// The split scheme (common/split_layout.h), as the AVX2 kernel does it with
// 4-lane vectors: x is split by the row's bitmap (gathers by the chunk's
// lane order, common/kernels/split_columns.h), then each code stream is
// decoded 4 codes a vector and dotted with its contiguous x (StreamDot):
// codes up to a superblock boundary and after the last whole period are
// cut from 32-bit windows at any bit, whole periods by compile-time plans.
//
// Never writes outside y and the buffer, whatever the bitmap or the row
// starts hold (MRAM errors corrupt them at run time): the buffer writes are
// bounded as split_columns.h says, and code reads are clamped to the
// streams' words (StreamWindows::Safe, HasWords).

// One chunk of 8 columns (bitmap byte m) into both regions; `inliers` and
// `outliers` point at their next free slot and one past it.
QMC_HELIUM_INLINE void SplitEight(uint32_t m, const float* x, float*& inliers, float*& outliers) {
  const SplitChunk& chunk = kSplitChunks.byte[m];
  const float32x4_t lo = vldrwq_gather_shifted_offset_f32(x, vldrbq_u32(chunk.order));
  const float32x4_t hi = vldrwq_gather_shifted_offset_f32(x, vldrbq_u32(chunk.order + 4));
  vst1q_f32(inliers, lo);
  vst1q_f32(inliers + 4, hi);
  outliers -= 8;
  vst1q_f32(outliers, lo);
  vst1q_f32(outliers + 4, hi);
  inliers += chunk.inliers;
  outliers += chunk.inliers;
}

// One of the last chunks: n ≤ 8 columns (bits m), no gap to spare, so only
// the lanes that belong to a region are stored there: the inliers by a
// predicated store, the outliers (order positions 8 − k on) by a predicated
// scatter from the region's new end. The gathers skip columns past n.
void SplitLastEight(uint32_t m, uint32_t n, const float* x, float*& inliers, float*& outliers) {
  const SplitChunk& chunk = kSplitChunks.byte[m];
  const auto in = static_cast<uint32_t>(chunk.inliers);
  const uint32_t k = 8 - in, valid_in = n - k;
  const uint32x4_t order_lo = vldrbq_u32(chunk.order), order_hi = vldrbq_u32(chunk.order + 4);
  const float32x4_t lo = vldrwq_gather_shifted_offset_z_f32(x, order_lo, vcmphiq_u32(vdupq_n_u32(n), order_lo));
  const float32x4_t hi = vldrwq_gather_shifted_offset_z_f32(x, order_hi, vcmphiq_u32(vdupq_n_u32(n), order_hi));
  vstrwq_p_f32(inliers, lo, vctp32q(valid_in));
  vstrwq_p_f32(inliers + 4, hi, vctp32q(valid_in > 4 ? valid_in - 4 : 0));
  outliers -= k;
  const uint32x4_t position = vidupq_n_u32(0, 1);  // of the lo lanes; hi: + 4
  vstrwq_scatter_shifted_offset_p_f32(outliers, vsubq_u32(position, vdupq_n_u32(in)), lo, vcmpcsq_n_u32(position, in));
  vstrwq_scatter_shifted_offset_p_f32(outliers, vsubq_u32(vaddq_n_u32(position, 4), vdupq_n_u32(in)), hi,
                                      vcmpcsq_n_u32(vaddq_n_u32(position, 4), in));
  inliers += valid_in;
}

// x split into buffer[0, inliers) and, reversed, buffer[inliers, cols);
// returns the inlier count. A bitmap word (4 chunks) at a time while 8
// columns follow it.
uint32_t SplitX(const SplitTensor& p, uint32_t row, const float* x, float* buffer) {
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

// VSHL shifts (negative: right) that cut codes [k, k + count) of a stream
// from the window at code k, per count 0..4: lane i holds code c = i, or
// with kReversed c = count − 1 − i; a lane with no code there shifts by
// −32, which gives 0.
template <uint32_t B, bool kReversed>
struct WindowShifts {
  struct alignas(16) Table {
    int32_t shift[5][4];
  };
  static constexpr Table Make() {
    Table table{};
    for (int count = 0; count <= 4; ++count) {
      for (int i = 0; i < 4; ++i) {
        const int c = kReversed ? count - 1 - i : i;
        table.shift[count][i] = c >= 0 && c < count ? -c * static_cast<int>(B) : -32;
      }
    }
    return table;
  }
  static constexpr Table kTable = Make();
};

template <uint32_t B>
QMC_HELIUM_INLINE float32x4_t LanesToFloats(uint32x4_t lanes) {
  return vcvtq_f32_u32(vandq_u32(lanes, vdupq_n_u32((1u << B) - 1u)));
}

// d += (codes [k, k + count) − zero)·their x (count ≤ 4), the codes cut from
// the window at stream bit `bit`; the x of lanes past count are not read
// and are 0, so those lanes add nothing.
template <uint32_t B, uint32_t S, bool kReversed>
QMC_HELIUM_INLINE float32x4_t WindowFma(const StreamWindows<S>& s, uint32_t bit, const float* x, uint32_t k,
                                        uint32_t count, float32x4_t zero, float32x4_t d) {
  // In column order, lanes past count may as well cut the next codes: the
  // shifts stay one constant.
  using Shifts = WindowShifts<B, kReversed>;
  const int32x4_t shifts = vld1q_s32(Shifts::kTable.shift[kReversed ? count : 4]);
  const uint32_t window = s.IsFast(bit) ? s.Fast(bit) : s.Safe(bit);
  const float32x4_t codes = LanesToFloats<B>(vshlq_u32(vdupq_n_u32(window), shifts));
  const float32x4_t xs = vld1q_z_f32(kReversed ? x - k - count : x + k, vctp32q(count));
  return vfmaq_f32(d, vsubq_f32(codes, zero), xs);
}

// d += (codes of vector V of a whole period − zero)·their x, its plan
// constant; even and odd vectors add to different sums.
template <uint32_t B, uint32_t S, bool kReversed, size_t V>
QMC_HELIUM_INLINE void PlannedFma(const uint32_t* period, const float* x, uint32_t k, float32x4_t zero,
                                  float32x4_t (&d)[2]) {
  constexpr const LanePlan& plan = LanePattern<B, S, kReversed>::kPlans.vector[V];
  const float32x4_t codes = LanesToFloats<B>(CutLanes<S>(period, plan, plan.reads_b, plan.straddles));
  const uint32_t first = k + 4 * static_cast<uint32_t>(V);
  const float32x4_t xs = vld1q_f32(kReversed ? x - first - 4 : x + first);
  d[V % 2] = vfmaq_f32(d[V % 2], vsubq_f32(codes, zero), xs);
}

template <uint32_t B, uint32_t S, bool kReversed, size_t... V>
QMC_HELIUM_INLINE void PeriodFma(const uint32_t* period, const float* x, uint32_t k, float32x4_t zero,
                                 float32x4_t (&d)[2], std::index_sequence<V...>) {
  (PlannedFma<B, S, kReversed, V>(period, x, k, zero, d), ...);
}

// Σ (code − zero)·x over codes [begin, begin + n) of a row's stream, lane-wise,
// code begin being code `first` of the whole stream: windows up to the next
// superblock boundary, whole periods, windows for the rest. x: code k's x
// is x[k − begin], or with kReversed x[begin − 1 − k].
template <uint32_t B, uint32_t S, bool kReversed>
float32x4_t StreamDot(const StreamWindows<S>& s, uint64_t first, uint32_t begin, uint32_t n, const float* x,
                      float32x4_t zero) {
  using Pattern = LanePattern<B, S, kReversed>;
  constexpr uint32_t kSuperblock = Superblock<B, S>::kCodes;
  const uint32_t to_boundary = (kSuperblock - RemainderBy<kSuperblock>(first)) % kSuperblock;
  const uint32_t head = to_boundary < n ? to_boundary : n;
  float32x4_t d[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  uint32_t k = 0, bit = s.start() + begin * B;
  for (; k < head; k += 4, bit += 4 * B) {
    d[1] = WindowFma<B, S, kReversed>(s, bit, x, k, head - k < 4 ? head - k : 4, zero, d[1]);
  }
  k = head;
  bit = s.start() + (begin + head) * B;
  constexpr uint32_t kPeriod = Pattern::kCodes;
  for (; k + kPeriod <= n && s.HasWords(bit, Pattern::kWords); k += kPeriod, bit += kPeriod * B) {
    PeriodFma<B, S, kReversed>(s.WordAt(bit), x, k, zero, d, std::make_index_sequence<Pattern::kVectors>{});
  }
  for (; k < n; k += 4, bit += 4 * B) {
    d[0] = WindowFma<B, S, kReversed>(s, bit, x, k, n - k < 4 ? n - k : 4, zero, d[0]);
  }
  return vaddq_f32(d[0], d[1]);
}

// Σ_g scale_g·Σ (code − zero_g)·x over the row's n inliers, lane-wise, a
// group being `group_size` consecutive inliers (pair 1 + g).
template <uint32_t B, uint32_t S>
float32x4_t InlierDot(const SplitTensor& p, uint32_t row, uint32_t group_size, const float* x, uint32_t n) {
  const uint64_t first = p.InlierFirst(row);
  const StreamWindows<S> stream(p.inlier_words, p.inlier_word_count, first * B);
  const uint8_t* scales = p.RowScales(row);
  float32x4_t sum = vdupq_n_f32(0.0f);
  for (uint32_t g = 0, begin = 0; begin < n; ++g, begin += group_size) {
    const GroupScaleVectors s = AffineScaleVectors(scales, 1u + g);
    const uint32_t count = n - begin < group_size ? n - begin : group_size;
    const float32x4_t dot = StreamDot<B, S, false>(stream, first + begin, begin, count, x + begin, s.zero);
    sum = vfmaq_f32(sum, s.scale, dot);
  }
  return sum;
}

// scale·Σ (code − zero)·x over the row's n outliers (pair 0), lane-wise;
// outlier j's x is x_end[−1 − j].
template <uint32_t B>
float32x4_t OutlierDot(const SplitTensor& p, uint32_t row, const float* x_end, uint32_t n) {
  const uint64_t first = p.OutlierFirst(row);
  const StreamWindows<32> stream(p.outlier_words, p.outlier_word_count, first * B);
  const GroupScaleVectors s = AffineScaleVectors(p.RowScales(row), 0);
  const float32x4_t dot = StreamDot<B, 32, true>(stream, first, 0, n, x_end, s.zero);
  return vmulq_f32(s.scale, dot);
}

float32x4_t OutlierDot(const SplitTensor& p, uint32_t row, uint32_t outlier_bits, const float* x_end, uint32_t n) {
  switch (outlier_bits) {
    case 4: return OutlierDot<4>(p, row, x_end, n);
    case 5: return OutlierDot<5>(p, row, x_end, n);
    case 6: return OutlierDot<6>(p, row, x_end, n);
    case 7: return OutlierDot<7>(p, row, x_end, n);
    default: return OutlierDot<8>(p, row, x_end, n);  // 8, the only other width a validated image holds
  }
}

template <uint32_t B, uint32_t S>
void SplitMatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* buffer) {
  const SplitTensor p(image, t);
  for (uint32_t r = 0; r < t.rows; ++r) {
    const uint32_t inliers = SplitX(p, r, x, buffer);
    const float32x4_t sum = InlierDot<B, S>(p, r, t.group_size, buffer, inliers);
    y[r] = HorizontalSum(vaddq_f32(sum, OutlierDot(p, r, t.outlier_bits, buffer + t.cols, t.cols - inliers)));
  }
}

void SplitLayout(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* buffer) {
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

}  // namespace

float DotHelium(const float* a, const float* b, uint32_t n) { return Dot(a, b, n); }

void AxpyHelium(float a, const float* x, float* y, uint32_t n) { Axpy(a, x, y, n); }

void MatVecHelium(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
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
    case image::Scheme::kGroupAffine:
    case image::Scheme::kMxInt4: return PackedLayout(image, t, x, y, row_buffer);
    case image::Scheme::kSplit: return SplitLayout(image, t, x, y, row_buffer);
  }
}

}  // namespace qmc::kernels
