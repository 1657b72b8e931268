// Random access into a code stream that runs through a whole tensor (the
// split scheme's inlier and outlier streams, common/split_layout.h): the 32
// stream bits from any bit on, from which a vector kernel cuts a vector's
// codes with one shift per lane. Words carry S stream bits (32, or 30 for
// 3-bit cells) in their low bits.
#pragma once

#include <cstdint>

namespace qmc::kernels {

// The per-vector calls must inline at every optimisation level (the m55
// preset builds for size), or each window pays for a call.
#define QMC_STREAM_INLINE [[gnu::always_inline]] inline

// n / D and n % D. A 32-bit target divides 64-bit numbers in a library
// call, while every position in its memory windows fits 32 bits: those
// divide in 32 bits, by a multiplication.
template <uint32_t D>
QMC_STREAM_INLINE constexpr uint64_t DivideBy(uint64_t n) {
  return n >> 32 == 0 ? static_cast<uint32_t>(n) / D : n / D;
}
template <uint32_t D>
QMC_STREAM_INLINE constexpr uint32_t RemainderBy(uint64_t n) {
  return static_cast<uint32_t>(n - DivideBy<D>(n) * D);
}

// One row's view of a stream. Bits are counted from the start of the word
// holding the row's first code, so they stay 32-bit within a row.
template <uint32_t S>
class StreamWindows {
 public:
  // The stream is `count` words; the row starts at stream bit `first_bit`.
  QMC_STREAM_INLINE StreamWindows(const uint32_t* words, uint64_t count, uint64_t first_bit)
      : words_(words), count_(count), base_(DivideBy<S>(first_bit)), start_(RemainderBy<S>(first_bit)) {
    // Capped: a row never spans 2^26 words, and bit sums stay far from overflow.
    const uint64_t left = count > base_ ? count - base_ : 0;
    words_left_ = static_cast<uint32_t>(left < (1u << 26) ? left : (1u << 26));
    row_ = left > 0 ? words + base_ : words;
  }

  // The row's first stream bit.
  QMC_STREAM_INLINE uint32_t start() const { return start_; }

  // Whether the `n` words from the one holding `bit` are in the stream.
  QMC_STREAM_INLINE bool HasWords(uint32_t bit, uint32_t n) const { return bit / S + n <= words_left_; }

  // Whether Fast(bit) reads only words of the stream.
  QMC_STREAM_INLINE bool IsFast(uint32_t bit) const { return HasWords(bit, 2); }

  // The word starting at `bit` (a multiple of S).
  QMC_STREAM_INLINE const uint32_t* WordAt(uint32_t bit) const { return row_ + bit / S; }

  // Stream bits [bit, bit + 32) in bits 0..31, from the word holding `bit`
  // and the next. For S = 30 only 60 − bit % 30 of them are stream bits: at
  // least 31, and all 32 for 4-bit codes, whose bit positions are even.
  QMC_STREAM_INLINE uint32_t Fast(uint32_t bit) const {
    const uint32_t w = bit / S;
    if constexpr (kNativeU64) {  // one 8-byte load, 64-bit shifts
      uint64_t pair;
      __builtin_memcpy(&pair, row_ + w, sizeof pair);
      return CutPair(pair, bit - w * S);
    }
    return Cut(row_[w], row_[w + 1], bit - w * S);
  }

  // As Fast, clamped to the stream: bits past its end read as garbage, and
  // a row start past the end (a corrupt index) reads its last word. Never
  // reads outside the stream's words.
  uint32_t Safe(uint32_t bit) const {
    if (count_ == 0) return 0;
    const uint32_t w = bit / S;
    return Cut(words_[Clamp(base_ + w)], words_[Clamp(base_ + w + 1)], bit - w * S);
  }

 private:
  uint64_t Clamp(uint64_t word) const { return word < count_ ? word : count_ - 1; }

  static constexpr bool kNativeU64 = sizeof(void*) == 8;

  // Cut on the two words as one 64-bit number.
  QMC_STREAM_INLINE static uint32_t CutPair(uint64_t pair, uint32_t offset) {
    if constexpr (S == 32) {
      return static_cast<uint32_t>(pair >> offset);
    } else {
      constexpr uint64_t kLow = (1u << S) - 1u;
      return static_cast<uint32_t>(((pair & kLow) | ((pair >> (32 - S)) & ~kLow)) >> offset);
    }
  }

  // The stream bits of words lo and hi, contiguous, from `offset` (< S) on,
  // by 32-bit shifts (a 32-bit target shifts a 64-bit number in five).
  QMC_STREAM_INLINE static uint32_t Cut(uint32_t lo, uint32_t hi, uint32_t offset) {
    if constexpr (S == 32) {
      return (lo >> offset) | ((hi << 1) << (31 - offset));  // hi << (32 − offset), 0 at offset 0
    } else {
      return ((lo & ((1u << S) - 1u)) >> offset) | (hi << (S - offset));
    }
  }

  const uint32_t* words_;
  const uint32_t* row_;  // the word holding the row's first bit (words_ if past the stream)
  uint64_t count_;
  uint64_t base_;
  uint32_t start_;
  uint32_t words_left_;  // words of the stream from base_ on
};

}  // namespace qmc::kernels
