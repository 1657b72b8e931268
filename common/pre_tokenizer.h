// The regex pre-tokenizers of byte-level BPE tokenizers, as hand-written
// matchers (the firmware has no regex engine). Each is one exact pattern of
// a HuggingFace tokenizer.json, split "Isolated": the text is cut into the
// pattern's successive leftmost matches, which cover it whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qmc {

// Stored in the tokenizer section (docs/image-format.md); the patterns are
// those the host recognises (host/tokenizer_json.cpp).
enum class PreTokenizer : uint8_t {
  kNone = 0,  // the whole text is one pre-token
  // GPT-2's ByteLevel regex:
  //   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2 = 1,
  // Llama 3's Split regex:
  //   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3 = 2,
  // Qwen2's Split regex: Llama 3's with \p{N} for \p{N}{1,3}.
  kQwen2 = 3,
};
inline constexpr uint8_t kLastPreTokenizer = 3;

// The end of the pre-token that starts at `start` (< text.size()): always
// past `start`. Malformed UTF-8 bytes are units of their own, in none of
// \p{L}, \p{N}, \s.
size_t PreTokenEnd(PreTokenizer kind, std::string_view text, size_t start);

}  // namespace qmc
