// Writing codes one after another into cell-packed words, as
// quant::WriteCode lays them out, without its bit-by-bit loop: stream bit s
// of a word stream lands at bit s mod B of word s / B, B the bits a word's
// whole cells hold (32, or 30 for 3-bit cells).
#pragma once

#include <cstdint>

#include "common/quant_layout.h"

namespace qmc::host {

class CodeStream {
 public:
  // `words` start zeroed; code k of the stream goes where WriteCode(words, k, ...) puts it.
  CodeStream(uint32_t* words, uint32_t bits, uint32_t cell_bits)
      : word_(words), bits_(bits), code_mask_((1u << bits) - 1u), width_(quant::CellsPerWord(cell_bits) * cell_bits) {}

  void Put(uint32_t code) {
    pending_ |= static_cast<uint64_t>(code & code_mask_) << held_;
    held_ += bits_;
    if (held_ >= width_) {
      *word_++ |= static_cast<uint32_t>(pending_ & ((uint64_t{1} << width_) - 1u));
      pending_ >>= width_;
      held_ -= width_;
    }
  }

  // Writes the last, partial word.
  void Flush() {
    if (held_ > 0) *word_ |= static_cast<uint32_t>(pending_);
    pending_ = 0;
    held_ = 0;
  }

 private:
  uint32_t* word_;
  uint32_t bits_, code_mask_, width_;
  uint64_t pending_ = 0;
  uint32_t held_ = 0;
};

}  // namespace qmc::host
