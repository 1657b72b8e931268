// The llama2.c BPE tokenizer (sentencepiece-style: dummy prefix, UTF-8
// codepoints, byte fallback, score-ordered merges), reading the vocabulary
// in place from the image's tokenizer section.
//
// Encode yields exactly the tokens of llama2.c run.c's encode(), but in
// O(n log n): symbols form a doubly linked list and candidate merges wait in
// a heap ordered like run.c's scan (highest score, then leftmost), with
// stamps that retire candidates whose symbols have since changed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/arena.h"
#include "common/image_reader.h"
#include "common/status.h"

namespace qmc {

class Tokenizer {
 public:
  static constexpr uint32_t kBos = 1;
  static constexpr uint32_t kEos = 2;

  // Workspace for a vocabulary of `vocab_size` and texts of up to
  // `max_text_length` bytes.
  static size_t WorkspaceBytes(uint32_t vocab_size, size_t max_text_length);
  // Capacity the tokens span of Encode needs for a text of `text_length` bytes.
  static constexpr size_t MaxTokens(size_t text_length) { return text_length + 3; }

  // `bytes` is a llama2.c tokenizer.bin with at least `vocab_size` entries;
  // it is read in place and must outlive the tokenizer, as must `workspace`.
  Status Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
              size_t max_text_length);
  // The tokenizer section of a validated image.
  Status Init(const image::ImageView& image, std::span<uint8_t> workspace, size_t max_text_length);

  // Writes the tokens of `text` (BOS first and EOS last when asked) and
  // returns their count; `tokens` must hold MaxTokens(text.size()).
  Result<uint32_t> Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens);

  // The text of `token` following `prev_token`, as run.c's decode(): after
  // BOS a leading space is dropped, and "<0xXX>" is the raw byte XX. The
  // view points into the vocabulary (or the tokenizer); empty for an
  // out-of-range token.
  std::string_view Decode(uint32_t prev_token, uint32_t token) const;

  uint32_t vocab_size() const { return vocab_size_; }
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
  char byte_pieces_[256] = {};
  Arena arena_;
};

}  // namespace qmc
