// Unicode Normalization Form C (HuggingFace's NFC normalizer), in memory the
// caller owns. Malformed UTF-8 bytes pass through unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/unicode_tables.h"

namespace qmc::nfc {

// Output bytes Normalize may write for a text of `length` bytes.
constexpr size_t MaxOutputBytes(size_t length) { return unicode::kNfdMaxBytesPerByte * length; }
// Scratch entries Normalize needs for a text of `length` bytes: one per
// codepoint of the full decomposition.
constexpr size_t ScratchEntries(size_t length) { return (unicode::kNfdMaxCodepointsPerTwoBytes * length + 1) / 2; }

// True when `text` has no codepoint NFC could change or move (then it is
// its own NFC): the common case, checked without decoding.
bool IsInert(std::string_view text);

// Writes NFC(text) to `out` (MaxOutputBytes(text.size()) bytes) with
// `scratch` (ScratchEntries(text.size())) and returns the bytes written.
size_t Normalize(std::string_view text, uint64_t* scratch, char* out);

}  // namespace qmc::nfc
