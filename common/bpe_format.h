// The BPE tokenizer section (image format 1.2): a HuggingFace tokenizer.json
// compiled to tables the firmware reads in place. docs/image-format.md,
// "Tokenizer", is the specification; the static_asserts pin it.
//
//   BpeHeader                      64 bytes
//   u32 byte_tokens[256]           the token of each lone byte
//   u32 text_offsets[token_count + 1]
//   u32 vocab_sorted[vocab_count]  the model vocabulary's ids by text
//   BpeMerge merges[merge_count]   by (left, right)
//   BpeAddedToken added[added_count]  by text
//   u8 text[text_bytes]            every token's text, back to back
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/pre_tokenizer.h"

namespace qmc::bpe {

// The section's first u32. A llama2.c tokenizer section starts with its
// max_token_length instead, at most 1024.
inline constexpr uint32_t kMagic = 0x4B4F5451u;  // bytes "QTOK"
inline constexpr uint16_t kVersion = 1;
inline constexpr uint32_t kNoToken = 0xFFFFFFFFu;
// The longest token text, as a llama2.c tokenizer's max_token_length
// (kLlama2cMaxTokenLength): the device's decode buffer is sized by it.
inline constexpr uint32_t kMaxTokenBytes = 1024;

enum class Model : uint8_t {
  kByteLevel = 1,      // GPT-2 style: texts are raw bytes, every byte has a token
  kSentencePiece = 2,  // sentencepiece style: texts use U+2581 for spaces, <0xXX> byte fallback
};

// BpeHeader.flags
inline constexpr uint32_t kFlagNfc = 1u << 0;                 // normalizer NFC
inline constexpr uint32_t kFlagIgnoreMerges = 1u << 1;        // a pre-token in the vocabulary is one token
inline constexpr uint32_t kFlagPrependMarker = 1u << 2;       // normalizer Prepend("\u2581")
inline constexpr uint32_t kFlagSpaceToMarker = 1u << 3;       // normalizer Replace(" ", "\u2581")
inline constexpr uint32_t kFlagAddBos = 1u << 4;              // BOS goes first by default
inline constexpr uint32_t kFlagAddEos = 1u << 5;              // EOS goes last by default
inline constexpr uint32_t kFlagStripSpaceAfterBos = 1u << 6;  // decoder Strip(" ", 1, 0)
inline constexpr uint32_t kKnownFlags = (1u << 7) - 1;

// BpeAddedToken.flags
inline constexpr uint32_t kAddedSpecial = 1u << 0;
inline constexpr uint32_t kAddedLstrip = 1u << 1;  // swallows the whitespace before it
inline constexpr uint32_t kAddedRstrip = 1u << 2;  // swallows the whitespace after it
inline constexpr uint32_t kKnownAddedFlags = (1u << 3) - 1;

struct BpeHeader {
  uint32_t magic;
  uint16_t version;
  uint8_t model;          // Model
  uint8_t pre_tokenizer;  // PreTokenizer
  uint32_t flags;
  uint32_t token_count;  // ids 0..token_count-1 have a text; <= the model's vocab_size
  uint32_t vocab_count;  // ids in vocab_sorted: the BPE model's vocabulary (not added-only tokens)
  uint32_t merge_count;
  uint32_t added_count;
  uint32_t bos;  // kNoToken when none
  uint32_t eos;  // kNoToken when none
  uint32_t max_token_bytes;
  uint32_t text_bytes;
  uint32_t reserved[5];  // zero
};
static_assert(sizeof(BpeHeader) == 64);
static_assert(offsetof(BpeHeader, flags) == 8);
static_assert(offsetof(BpeHeader, text_bytes) == 40);

// Adjacent symbols `left`, `right` merge into `result`; the lowest rank merges first.
struct BpeMerge {
  uint32_t left;
  uint32_t right;
  uint32_t rank;
  uint32_t result;
};
static_assert(sizeof(BpeMerge) == 16);

struct BpeAddedToken {
  uint32_t id;
  uint32_t flags;  // kAdded*
};
static_assert(sizeof(BpeAddedToken) == 8);

// Where each table starts, from the counts of a header.
struct BpeLayout {
  uint64_t byte_tokens, text_offsets, vocab_sorted, merges, added, text, end;

  static BpeLayout Of(const BpeHeader& h) {
    BpeLayout l{};
    l.byte_tokens = sizeof(BpeHeader);
    l.text_offsets = l.byte_tokens + 256u * 4u;
    l.vocab_sorted = l.text_offsets + (uint64_t{h.token_count} + 1) * 4u;
    l.merges = l.vocab_sorted + uint64_t{h.vocab_count} * 4u;
    l.added = l.merges + uint64_t{h.merge_count} * sizeof(BpeMerge);
    l.text = l.added + uint64_t{h.added_count} * sizeof(BpeAddedToken);
    l.end = l.text + h.text_bytes;
    return l;
  }
};

}  // namespace qmc::bpe
