// UTF-8 as the tokenizers read it: text is bytes, and a byte that starts no
// well-formed character (stray continuation, overlong form, surrogate,
// truncated sequence, past U+10FFFF) is a unit of its own, so every byte
// string splits into units and encodes, and decodes back, exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qmc::utf8 {

// The codepoint of a unit that is a lone malformed byte.
inline constexpr uint32_t kMalformed = 0xFFFFFFFFu;

struct Unit {
  uint32_t cp;      // kMalformed for a malformed byte
  uint32_t length;  // bytes, 1..4
};

// The unit starting at text[pos] (pos < text.size()).
inline Unit Decode(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return {lead, 1};
  uint32_t length, cp, min;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, cp = lead & 0x1Fu, min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, cp = lead & 0x0Fu, min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, cp = lead & 0x07u, min = 0x10000;
  } else {
    return {kMalformed, 1};
  }
  if (text.size() - pos < length) return {kMalformed, 1};
  for (uint32_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0u) != 0x80u) return {kMalformed, 1};
    cp = cp << 6 | (byte(i) & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kMalformed, 1};
  return {cp, length};
}

// Writes the UTF-8 of codepoint `cp` (<= U+10FFFF) to `out`; returns its length.
inline uint32_t Encode(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0u | cp >> 6);
    out[1] = static_cast<char>(0x80u | (cp & 0x3Fu));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0u | cp >> 12);
    out[1] = static_cast<char>(0x80u | (cp >> 6 & 0x3Fu));
    out[2] = static_cast<char>(0x80u | (cp & 0x3Fu));
    return 3;
  }
  out[0] = static_cast<char>(0xF0u | cp >> 18);
  out[1] = static_cast<char>(0x80u | (cp >> 12 & 0x3Fu));
  out[2] = static_cast<char>(0x80u | (cp >> 6 & 0x3Fu));
  out[3] = static_cast<char>(0x80u | (cp & 0x3Fu));
  return 4;
}

}  // namespace qmc::utf8
