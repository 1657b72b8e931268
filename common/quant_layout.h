// Where each weight's code, scale and outlier lives: the packing of b-bit
// codes into c-bit MLC cells and of cells into 32-bit bus words.
//
// A row's codes form a bit stream (code k at stream bits [k*b, k*b+b),
// least significant bit first). The stream is cut into c-bit cells; a bus
// word holds 32/c cells (32, 16 or 10) in its low bits, the first cell in
// the least significant position. Every row starts on a new word, so rows
// are addressable without decoding their predecessors.
#pragma once

#include <bit>
#include <cstdint>

#include "common/half.h"

namespace qmc::quant {

inline constexpr uint32_t kMxBlock = 32;
inline constexpr int kMxScaleBias = 127;

constexpr uint32_t CellsPerWord(uint32_t cell_bits) { return 32u / cell_bits; }

// Words holding a stream of `codes` b-bit codes.
constexpr uint64_t StreamWords(uint64_t codes, uint32_t bits, uint32_t cell_bits) {
  const uint64_t stream_bits = codes * bits;
  const uint64_t bits_per_word = static_cast<uint64_t>(CellsPerWord(cell_bits)) * cell_bits;
  return (stream_bits + bits_per_word - 1) / bits_per_word;
}

constexpr uint32_t WordsPerRow(uint32_t cols, uint32_t bits, uint32_t cell_bits) {
  return static_cast<uint32_t>(StreamWords(cols, bits, cell_bits));
}

constexpr uint32_t GroupsPerRow(uint32_t cols, uint32_t group_size) {
  return (cols + group_size - 1) / group_size;
}

// Reads cell `cell` of a row's words. Code and cell indices are 64-bit: a
// split tensor's inlier stream runs through the whole tensor.
constexpr uint32_t ReadCell(const uint32_t* row_words, uint64_t cell, uint32_t cell_bits) {
  const uint32_t per_word = CellsPerWord(cell_bits);
  const auto shift = static_cast<uint32_t>(cell % per_word) * cell_bits;
  return (row_words[cell / per_word] >> shift) & ((1u << cell_bits) - 1u);
}

// Reads code k of a row: the reference decoder every optimised kernel must match.
constexpr uint32_t ReadCode(const uint32_t* row_words, uint64_t k, uint32_t bits, uint32_t cell_bits) {
  uint32_t code = 0;
  const uint64_t first = k * bits;
  for (uint32_t i = 0; i < bits; ++i) {
    const uint64_t stream_bit = first + i;
    const uint32_t cell = ReadCell(row_words, stream_bit / cell_bits, cell_bits);
    code |= ((cell >> static_cast<uint32_t>(stream_bit % cell_bits)) & 1u) << i;
  }
  return code;
}

// Writes code k of a row whose words start zeroed.
constexpr void WriteCode(uint32_t* row_words, uint64_t k, uint32_t code, uint32_t bits, uint32_t cell_bits) {
  const uint32_t per_word = CellsPerWord(cell_bits);
  const uint64_t first = k * bits;
  for (uint32_t i = 0; i < bits; ++i) {
    const uint64_t stream_bit = first + i;
    const uint64_t cell = stream_bit / cell_bits;
    const auto shift = static_cast<uint32_t>(cell % per_word) * cell_bits + static_cast<uint32_t>(stream_bit % cell_bits);
    row_words[cell / per_word] |= ((code >> i) & 1u) << shift;
  }
}

// Group-affine dequantisation; zero is an integer code, so code == zero is
// exactly 0.0f and an outlier position adds no inlier error.
constexpr float DequantGroupAffine(uint32_t code, uint16_t scale_fp16, uint16_t zero_fp16) {
  return (static_cast<float>(code) - HalfToFloat(zero_fp16)) * HalfToFloat(scale_fp16);
}

// E8M0: a bare biased exponent, 2^(e-127); 255 (NaN in OCP MX) is never written.
constexpr float E8M0ToFloat(uint8_t e8m0) {
  return e8m0 == 0 ? std::bit_cast<float>(0x00400000u) : std::bit_cast<float>(static_cast<uint32_t>(e8m0) << 23);
}

// MX: a 4-bit two's-complement element times the block's power of two.
constexpr float DequantMxInt4(uint32_t code, uint8_t e8m0) {
  const int value = (code & 0x8u) ? static_cast<int>(code) - 16 : static_cast<int>(code);
  return static_cast<float>(value) * E8M0ToFloat(e8m0);
}

}  // namespace qmc::quant
