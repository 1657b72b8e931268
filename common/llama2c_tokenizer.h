// The llama2.c BPE tokenizer (sentencepiece-style: dummy prefix, UTF-8
// codepoints, byte fallback, score-ordered merges), reading a tokenizer.bin
// in place.
//
// Encode yields exactly the tokens of llama2.c run.c's encode(), but in
// O(n log n): symbols form a doubly linked list and candidate merges wait in
// a heap ordered like run.c's scan (highest score, then leftmost), with
// stamps that retire candidates whose symbols have since changed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "common/arena.h"
#include "common/status.h"

namespace qmc {

// tokenizer.bin: u32 max_token_length (1..kLlama2cMaxTokenLength), then per
// token {f32 score (finite), u32 length (1..max_token_length), the bytes}.
// ScanLlama2c is the format's one reader: the image reader, the encoder and
// the host's loader all walk a file with it.
inline constexpr uint32_t kLlama2cMaxTokenLength = 1024;

struct Llama2cScan {
  enum class Fault : uint8_t {
    kNone,
    kNoHeader,   // shorter than max_token_length
    kMaxLength,  // max_token_length out of range
    kEnded,      // the bytes end where an entry should start
    kTruncated,  // the bytes end inside an entry
    kScore,      // a score is not finite
    kLength,     // a length out of range
  };
  Fault fault = Fault::kNone;
  uint32_t entries = 0;  // whole entries read
  size_t end = 0;        // bytes read: the header and those entries (where a faulty entry starts)
  uint32_t max_token_length = 0;

  bool ok() const { return fault == Fault::kNone; }
  // The fault as a Status (a static message).
  Status status() const;
};

// Reads the header and up to `count` entries (all there are when count is
// UINT32_MAX), stopping at the first fault, and calls
// on_entry(index, text_offset, length) for each good entry.
template <typename OnEntry>
Llama2cScan ScanLlama2c(std::span<const uint8_t> bytes, uint32_t count, OnEntry&& on_entry) {
  using Fault = Llama2cScan::Fault;
  const auto load = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, sizeof v);
    return v;
  };
  Llama2cScan scan;
  if (bytes.size() < 4) return scan.fault = Fault::kNoHeader, scan;
  scan.max_token_length = load(0);
  scan.end = 4;
  if (scan.max_token_length == 0 || scan.max_token_length > kLlama2cMaxTokenLength)
    return scan.fault = Fault::kMaxLength, scan;
  for (; scan.entries < count; ++scan.entries) {
    const size_t pos = scan.end;
    if (pos == bytes.size()) {
      if (count != UINT32_MAX) scan.fault = Fault::kEnded;
      return scan;
    }
    if (bytes.size() - pos < 8) return scan.fault = Fault::kTruncated, scan;
    if ((load(pos) & 0x7F800000u) == 0x7F800000u) return scan.fault = Fault::kScore, scan;
    const uint32_t length = load(pos + 4);
    if (length == 0 || length > scan.max_token_length) return scan.fault = Fault::kLength, scan;
    if (bytes.size() - pos - 8 < length) return scan.fault = Fault::kTruncated, scan;
    on_entry(scan.entries, pos + 8, length);
    scan.end = pos + 8 + length;
  }
  return scan;
}

class Llama2cTokenizer {
 public:
  static constexpr uint32_t kBos = 1;
  static constexpr uint32_t kEos = 2;

  static size_t WorkspaceBytes(uint32_t vocab_size, size_t max_text_length);
  static constexpr size_t MaxTokens(size_t text_length) { return text_length + 3; }

  // `bytes` holds at least `vocab_size` entries; it is read in place and
  // must outlive the tokenizer, as must `workspace`.
  Status Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
              size_t max_text_length);

  // `continuation`: `text` follows an earlier one at a break BreakBefore
  // allowed, so it takes no dummy prefix.
  Result<uint32_t> Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens,
                          bool continuation = false);

  // The largest p <= limit (0 < p < text.size()) right after a '\n' and
  // before an ASCII byte, if the vocabulary lets no merge cross there: then
  // text[0, p) and the continuation text[p, ...) encode to text's tokens.
  // 0 if none. A merge crosses only into a token holding the newline
  // symbol's text followed by more bytes; the ASCII byte keeps the
  // codepoints apart.
  size_t BreakBefore(std::string_view text, size_t limit) const;

  // The text of `token` following `prev_token`, as run.c's decode(): after
  // BOS a leading space is dropped, and "<0xXX>" is the raw byte XX. The
  // view points into the vocabulary (or the tokenizer); empty for an
  // out-of-range token.
  std::string_view Decode(uint32_t prev_token, uint32_t token) const;

  const Arena& arena() const { return arena_; }

 private:
  struct Symbol;
  struct Candidate;

  std::string_view Piece(uint32_t token) const;
  float Score(uint32_t token) const;
  // The token whose text is `a` followed by `b`, or -1 (the lowest id if
  // the vocabulary repeats a string).
  int32_t Lookup(std::string_view a, std::string_view b) const;
  // Queues the merge of adjacent symbols `left` and `right` if the vocabulary has it.
  void Offer(const Symbol* symbols, uint32_t left, uint32_t right, Candidate* heap, uint32_t& heap_size) const;

  std::span<const uint8_t> bytes_;
  uint32_t vocab_size_ = 0;
  uint32_t max_token_length_ = 0;
  size_t max_text_length_ = 0;
  const uint32_t* offsets_ = nullptr;  // where each token's bytes start in bytes_
  const uint32_t* lengths_ = nullptr;  // up to the first NUL, as run.c's C strings
  const uint32_t* sorted_ = nullptr;   // token ids by (text, id)
  int32_t space_token_ = -1;           // " ", the dummy prefix
  bool newline_breaks_ = false;        // no token continues past the newline symbol's text
  char byte_pieces_[256] = {};
  Arena arena_;
};

}  // namespace qmc
