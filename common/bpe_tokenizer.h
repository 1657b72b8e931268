// Byte-level and sentencepiece-style BPE, as HuggingFace tokenizers runs a
// tokenizer.json, over the tables of a BPE tokenizer section read in place
// (common/bpe_format.h).
//
// Encode: added tokens are matched in the raw text first (leftmost, then
// longest); each stretch between them is normalized (NFC, or the
// sentencepiece marker), cut into pre-tokens by the regex pre-tokenizer,
// and each pre-token is merged by rank: its symbols form a linked list and
// candidate merges wait in a heap ordered by (rank, position), entries that
// a merge has made stale being dropped as they surface, so a pre-token of n
// bytes costs O(n log n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/arena.h"
#include "common/bpe_format.h"
#include "common/status.h"

namespace qmc {

class BpeTokenizer {
 public:
  // Checks every table of a BPE section against a model of `vocab_size`
  // rows: bounds, ids, the orders the searches rely on.
  static Status Validate(std::span<const uint8_t> bytes, uint32_t vocab_size);

  // Workspace for texts of up to `max_text_length` bytes with the section `bytes`.
  static size_t WorkspaceBytes(std::span<const uint8_t> bytes, size_t max_text_length);
  // Capacity the tokens span of Encode needs for a text of `text_length` bytes.
  size_t MaxTokens(size_t text_length) const;

  // `bytes` (4-byte aligned) and `workspace` must outlive the tokenizer.
  Status Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
              size_t max_text_length);

  // `continuation`: `text` follows an earlier one at a break BreakBefore
  // allowed, so its first stretch takes no prepended marker.
  Result<uint32_t> Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens,
                          bool continuation = false);

  // The largest p <= limit (0 < p < text.size()) right after a '\n' where
  // text[0, p) and the continuation text[p, ...) encode to text's tokens;
  // 0 if none. p must lie inside a stretch between added tokens (as Encode
  // finds them in text, lstrip and rstrip included). Sentencepiece style:
  // the next byte is ASCII and no token holds the newline symbol's text
  // followed by more bytes (merges join texts), so no merge crosses p.
  // Byte level: p starts a pre-token of the stretch and the pre-tokens
  // before it are the same in text[0, p); merges stay inside pre-tokens.
  // With NFC, a stretch NFC changes is checked normalized (NFC never
  // reaches across a '\n'), within max_text_length bytes.
  size_t BreakBefore(std::string_view text, size_t limit);

  // The bytes of `token`: byte-level texts as they are; sentencepiece
  // texts with U+2581 as a space, "<0xXX>" as the byte XX and, when the
  // decoder strips it, a leading space after BOS dropped. Valid until the
  // next call; empty past the tokenizer's tokens.
  std::string_view Decode(uint32_t prev_token, uint32_t token) const;

  uint32_t bos() const { return header_.bos; }
  uint32_t eos() const { return header_.eos; }
  bool add_bos() const { return (header_.flags & bpe::kFlagAddBos) != 0; }
  bool add_eos() const { return (header_.flags & bpe::kFlagAddEos) != 0; }
  const Arena& arena() const { return arena_; }

 private:
  struct Symbol;
  struct Candidate;
  struct Output;

  std::string_view Text(uint32_t token) const;
  // The model-vocabulary token whose text is `text`, or kNoToken.
  uint32_t LookupVocab(std::string_view text) const;
  // The merge of `left` then `right`, or nullptr.
  const bpe::BpeMerge* LookupMerge(uint32_t left, uint32_t right) const;
  // The longest added token `rest` starts with, or nullptr.
  const bpe::BpeAddedToken* AddedTokenAt(std::string_view rest) const;
  // Cuts `text` at added tokens as Encode does: on_segment(begin, end) for
  // each stretch between them (maybe empty), on_added(token) after each.
  template <typename OnSegment, typename OnAdded>
  void Split(std::string_view text, OnSegment&& on_segment, OnAdded&& on_added) const;
  // The largest break of BreakBefore inside the stretch [begin, end) of
  // `view`, which is text cut `truncated` at its end.
  size_t SegmentBreak(std::string_view view, size_t begin, size_t end, size_t limit, bool truncated);
  void EncodeSegment(std::string_view segment, bool marker, Output& out);
  void EncodeWord(std::string_view word, Output& out);
  void Offer(const Symbol* symbols, uint32_t left, Candidate* heap, uint32_t& heap_size) const;

  bpe::BpeHeader header_{};
  const uint8_t* base_ = nullptr;
  const uint32_t* byte_tokens_ = nullptr;
  const uint32_t* text_offsets_ = nullptr;
  const uint32_t* vocab_sorted_ = nullptr;
  const bpe::BpeMerge* merges_ = nullptr;
  const bpe::BpeAddedToken* added_ = nullptr;
  const char* text_ = nullptr;
  uint32_t added_first_bytes_[8] = {};  // bit b: some added token starts with byte b
  uint32_t max_added_bytes_ = 0;
  bool newline_breaks_ = false;  // sentencepiece: no merge joins past the newline symbol
  size_t max_text_length_ = 0;
  // Scratch carved at Init.
  char* normalized_ = nullptr;
  uint64_t* nfc_scratch_ = nullptr;
  Symbol* symbols_ = nullptr;
  Candidate* heap_ = nullptr;
  char* decoded_ = nullptr;
  Arena arena_;
};

}  // namespace qmc
