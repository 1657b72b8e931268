// Sequential reading of a packed code stream from any code index: the split
// scheme's inlier and outlier streams run through a whole tensor, so a row's
// codes start mid-word. Words carry StreamBitsPerWord(cell_bits) stream bits
// (32, or 30 for 3-bit cells) in their low bits; a 64-bit buffer holds the
// bits not yet consumed. Never reads a word before a code needs it.
#pragma once

#include <cstdint>

#include "common/kernels/unpack_codes.h"

namespace qmc::kernels {

class CodeStream {
 public:
  CodeStream(const uint32_t* words, uint64_t first_code, uint32_t bits, uint32_t cell_bits)
      : bits_(bits), stream_bits_(StreamBitsPerWord(cell_bits)), mask_((1u << bits) - 1u) {
    const uint64_t first_bit = first_code * bits;
    next_ = words + first_bit / stream_bits_;
    const auto skip = static_cast<uint32_t>(first_bit % stream_bits_);
    if (skip != 0) {
      Refill();
      buffer_ >>= skip;
      available_ -= skip;
    }
  }

  uint32_t Next() {
    if (available_ < bits_) Refill();
    const auto code = static_cast<uint32_t>(buffer_) & mask_;
    buffer_ >>= bits_;
    available_ -= bits_;
    return code;
  }

 private:
  void Refill() {
    const uint64_t word = stream_bits_ == 32 ? *next_ : (*next_ & ((1u << 30) - 1u));
    ++next_;
    buffer_ |= word << available_;
    available_ += stream_bits_;
  }

  const uint32_t* next_;
  uint64_t buffer_ = 0;
  uint32_t available_ = 0;
  uint32_t bits_;
  uint32_t stream_bits_;
  uint32_t mask_;
};

}  // namespace qmc::kernels
