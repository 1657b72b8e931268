// The image's tokenizer, whichever format its section holds: a llama2.c
// tokenizer.bin (common/llama2c_tokenizer.h) or a BPE compiled from a
// HuggingFace tokenizer.json (common/bpe_tokenizer.h). Callers see one API
// and never ask which: BOS, EOS and where generated text ends come from
// the tokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/arena.h"
#include "common/bpe_tokenizer.h"
#include "common/image_reader.h"
#include "common/llama2c_tokenizer.h"
#include "common/status.h"

namespace qmc {

class Tokenizer {
 public:
  static constexpr uint32_t kNoToken = bpe::kNoToken;

  // Checks a tokenizer section for a model of `vocab_size` rows: a llama2.c
  // vocabulary of exactly that many entries, or a BPE of at most that many
  // tokens (embeddings may be padded past the tokenizer).
  static Status Validate(std::span<const uint8_t> bytes, uint32_t vocab_size);

  // Workspace Init needs for the section `bytes` and texts of up to
  // `max_text_length` bytes.
  static size_t WorkspaceBytes(std::span<const uint8_t> bytes, uint32_t vocab_size, size_t max_text_length);
  // The same for the tokenizer section of a validated image.
  static size_t WorkspaceBytes(const image::ImageView& image, size_t max_text_length);

  // `bytes` is read in place and must outlive the tokenizer, as must `workspace`.
  Status Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
              size_t max_text_length);
  // The tokenizer section of a validated image.
  Status Init(const image::ImageView& image, std::span<uint8_t> workspace, size_t max_text_length);

  // Capacity the tokens span of Encode needs for a text of `text_length` bytes.
  size_t MaxTokens(size_t text_length) const;

  // Writes the tokens of `text` (BOS first and EOS last when asked: see
  // add_bos() and add_eos() for the model's default) and returns their
  // count; `tokens` must hold MaxTokens(text.size()).
  Result<uint32_t> Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens);

  // Encoding a long text in bounded memory: BreakBefore(text, limit) is the
  // largest p <= limit (0 < p < text.size(), 0 if none) such that Encode of
  // text[0, p) followed by EncodeContinuation of text[p, ...) gives exactly
  // Encode(text)'s tokens. Breaks fall right after a '\n' where the
  // tokenizer provably neither merges nor pre-tokenizes across (see
  // Llama2cTokenizer::BreakBefore and BpeTokenizer::BreakBefore); a
  // continuation takes no BOS and no dummy prefix or prepended marker.
  size_t BreakBefore(std::string_view text, size_t limit);
  Result<uint32_t> EncodeContinuation(std::string_view text, bool eos, std::span<uint32_t> tokens);

  // The bytes of `token` following `prev_token` (empty past the
  // vocabulary). The view lives until the next Decode or Display.
  std::string_view Decode(uint32_t prev_token, uint32_t token) const;
  // What a console prints for it: Decode's bytes, except that a llama2.c
  // lone raw byte shows only when printable ASCII or whitespace (run.c's
  // safe_printf). BPE bytes all show: a character split over tokens is
  // whole once its last byte is out.
  std::string_view Display(uint32_t prev_token, uint32_t token) const;

  // BOS and EOS ids, kNoToken when the tokenizer has none.
  uint32_t bos() const;
  uint32_t eos() const;
  // Whether the model's texts start with BOS and end with EOS by default.
  bool add_bos() const;
  bool add_eos() const;
  // The token a text starts from when nothing precedes it (an empty
  // prompt, an evaluation window): BOS, or for a tokenizer without one its
  // EOS, the text separator GPT-2-style models train with; kNoToken if neither.
  uint32_t StartToken() const { return bos() != kNoToken ? bos() : eos(); }
  // Whether generated text ends at `token`: the model's EOS; for llama2.c,
  // BOS (run.c's convention: BOS delimits its texts).
  bool EndsText(uint32_t token) const;

  const Arena& arena() const;

 private:
  enum class Kind : uint8_t { kNone, kLlama2c, kBpe };

  Kind kind_ = Kind::kNone;
  Llama2cTokenizer llama2c_;
  BpeTokenizer bpe_;
};

}  // namespace qmc
