#include "common/kernels/unpack_codes.h"

#include <cstddef>
#include <utility>

namespace qmc::kernels {
namespace {

float CodeToFloat(uint32_t code) { return static_cast<float>(static_cast<int32_t>(code)); }

// Code J of a superblock, its position a compile-time constant.
template <uint32_t B, uint32_t S, size_t J>
uint32_t SuperblockCode(const uint32_t* words) {
  constexpr uint32_t kFirst = static_cast<uint32_t>(J) * B;
  constexpr uint32_t kWord = kFirst / S;
  constexpr uint32_t kOffset = kFirst % S;
  constexpr uint32_t kCodeMask = (1u << B) - 1u;
  if constexpr (kOffset + B <= S) {
    return (words[kWord] >> kOffset) & kCodeMask;
  } else {  // straddles two words; a 30-bit word's top bits are not stream bits
    constexpr uint32_t kWordMask = S == 32 ? ~0u : (1u << S) - 1u;
    return (((words[kWord] & kWordMask) >> kOffset) | (words[kWord + 1] << (S - kOffset))) & kCodeMask;
  }
}

template <uint32_t B, uint32_t S, size_t... J>
void UnpackSuperblock(const uint32_t* words, uint32_t flip, float* out, std::index_sequence<J...>) {
  ((out[J] = CodeToFloat(SuperblockCode<B, S, J>(words) ^ flip)), ...);
}

template <uint32_t B, uint32_t S>
void UnpackRow(const uint32_t* words, uint32_t cols, uint32_t flip, float* out) {
  using Block = Superblock<B, S>;
  uint32_t k = 0;
  for (; k + Block::kCodes <= cols; k += Block::kCodes, words += Block::kWords) {
    UnpackSuperblock<B, S>(words, flip, out + k, std::make_index_sequence<Block::kCodes>{});
  }
  for (uint32_t j = 0; k < cols; ++j, ++k) out[k] = CodeToFloat(CodeFromWords(words, j, B, S) ^ flip);
}

}  // namespace

void UnpackCodes(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip, float* out) {
  const bool full_words = StreamBitsPerWord(cell_bits) == 32;
  switch (bits) {
    case 2: return full_words ? UnpackRow<2, 32>(row_words, cols, flip, out) : UnpackRow<2, 30>(row_words, cols, flip, out);
    case 3: return full_words ? UnpackRow<3, 32>(row_words, cols, flip, out) : UnpackRow<3, 30>(row_words, cols, flip, out);
    default:  // 4, the only other width a validated image holds
      return full_words ? UnpackRow<4, 32>(row_words, cols, flip, out) : UnpackRow<4, 30>(row_words, cols, flip, out);
  }
}

}  // namespace qmc::kernels
