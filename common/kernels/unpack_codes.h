// Whole-word decoding of a row's packed codes: the fast counterpart of
// quant::ReadCode. A c-bit-cell word carries (32/c)*c contiguous stream bits
// in its low bits (32 for c = 1, 2; 30 for c = 3), so a row's stream is the
// concatenation of those bits and the cells need not be visited one by one.
#pragma once

#include <cstdint>

#include "common/quant_layout.h"

namespace qmc::kernels {

constexpr uint32_t StreamBitsPerWord(uint32_t cell_bits) { return quant::CellsPerWord(cell_bits) * cell_bits; }

constexpr uint32_t Gcd(uint32_t a, uint32_t b) { return b == 0 ? a : Gcd(b, a % b); }

// For B-bit codes in words of S stream bits, a superblock is the fewest whole
// words that hold whole codes: lcm(B, S) stream bits, e.g. 3 words = 32
// codes for (3, 32), 2 words = 15 codes for (4, 30). Kernels unroll over it.
template <uint32_t B, uint32_t S>
struct Superblock {
  static constexpr uint32_t kBits = B * S / Gcd(B, S);
  static constexpr uint32_t kCodes = kBits / B;
  static constexpr uint32_t kWords = kBits / S;
};

// Code k of a row whose words carry `stream_bits` bits each. A code spans at
// most two words, and the second is read only when the code reaches into it,
// so nothing past the row's last word is touched.
constexpr uint32_t CodeFromWords(const uint32_t* words, uint32_t k, uint32_t bits, uint32_t stream_bits) {
  const uint32_t first = k * bits;
  const uint32_t word = first / stream_bits;
  const uint32_t offset = first % stream_bits;
  const uint32_t word_mask = stream_bits == 32 ? ~0u : (1u << stream_bits) - 1u;
  uint32_t code = (words[word] & word_mask) >> offset;
  if (offset + bits > stream_bits) code |= words[word + 1] << (stream_bits - offset);
  return code & ((1u << bits) - 1u);
}

// out[k] = code k XOR `flip`, as a float, for k < cols; bits 2..4, cell_bits 1..3.
void UnpackCodes(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip, float* out);

}  // namespace qmc::kernels
