#include "common/llama2c_tokenizer.h"

#include <algorithm>
#include <cstring>

namespace qmc {

struct Llama2cTokenizer::Symbol {
  uint32_t token;
  int32_t prev;  // -1 at the ends
  int32_t next;
  uint32_t stamp;  // bumped whenever the symbol changes or is merged away
};

// A possible merge of symbol `left` with its right neighbour `right`, valid
// while both stamps still match.
struct Llama2cTokenizer::Candidate {
  float score;
  uint32_t left;
  uint32_t right;
  uint32_t token;
  uint32_t left_stamp;
  uint32_t right_stamp;

  // Orders the heap like run.c's scan: the highest score wins, ties go to
  // the leftmost pair (symbol indices grow left to right).
  static bool LowerPriority(const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

namespace {

// run.c starts its search for the best merge at this score, so merges
// scoring at or below it never happen.
constexpr float kNoMergeScore = -1e10f;

// memcmp that accepts the null data of an empty view.
int CompareBytes(const char* a, const char* b, size_t n) { return n == 0 ? 0 : std::memcmp(a, b, n); }

// strcmp order of `t` against the concatenation a + b.
int CompareWithPair(std::string_view t, std::string_view a, std::string_view b) {
  if (const int c = CompareBytes(t.data(), a.data(), std::min(t.size(), a.size())); c != 0) return c;
  if (t.size() < a.size()) return -1;
  t.remove_prefix(a.size());
  if (const int c = CompareBytes(t.data(), b.data(), std::min(t.size(), b.size())); c != 0) return c;
  return t.size() < b.size() ? -1 : (t.size() > b.size() ? 1 : 0);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// What run.c's sscanf(piece, "<0x%02hhX>") accepts: "<0x" and one or two hex digits.
int RawByte(std::string_view piece) {
  if (piece.size() < 4 || !piece.starts_with("<0x") || HexDigit(piece[3]) < 0) return -1;
  int value = HexDigit(piece[3]);
  if (piece.size() > 4 && HexDigit(piece[4]) >= 0) value = value * 16 + HexDigit(piece[4]);
  return value;
}

}  // namespace

Status Llama2cScan::status() const {
  switch (fault) {
    case Fault::kNone:
      break;
    case Fault::kNoHeader:
      return Error(StatusCode::kTruncated, "tokenizer too short");
    case Fault::kMaxLength:
      return Error(StatusCode::kInvalidValue, "tokenizer max token length out of range");
    case Fault::kEnded:
      return Error(StatusCode::kTruncated, "tokenizer ends before the vocabulary does");
    case Fault::kTruncated:
      return Error(StatusCode::kTruncated, "tokenizer ends inside a token");
    case Fault::kScore:
      return Error(StatusCode::kInvalidValue, "tokenizer score is not finite");
    case Fault::kLength:
      return Error(StatusCode::kInvalidValue, "tokenizer entry length out of range");
  }
  return Status::Ok();
}

size_t Llama2cTokenizer::WorkspaceBytes(uint32_t vocab_size, size_t max_text_length) {
  const size_t symbols = max_text_length + 2;  // BOS and the dummy prefix
  // Every merge retires one symbol and offers at most two new pairs.
  return Arena::kStartPadding + 3 * Arena::Footprint<uint32_t>(vocab_size) + Arena::Footprint<Symbol>(symbols) +
         Arena::Footprint<Candidate>(3 * symbols);
}

Status Llama2cTokenizer::Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
                              size_t max_text_length) {
  vocab_size_ = 0;  // an empty vocabulary until Init succeeds
  max_text_length_ = 0;
  if (workspace.size() < WorkspaceBytes(vocab_size, max_text_length)) {
    return Error(StatusCode::kTooLarge, "tokenizer workspace too small");
  }
  arena_ = Arena(workspace);
  auto* offsets = arena_.Allocate<uint32_t>(vocab_size);
  auto* lengths = arena_.Allocate<uint32_t>(vocab_size);
  auto* sorted = arena_.Allocate<uint32_t>(vocab_size);
  const Llama2cScan scan = ScanLlama2c(bytes, vocab_size, [&](uint32_t t, size_t offset, uint32_t length) {
    offsets[t] = static_cast<uint32_t>(offset);
    const auto* text = bytes.data() + offset;
    const auto* nul = static_cast<const uint8_t*>(std::memchr(text, 0, length));
    lengths[t] = nul != nullptr ? static_cast<uint32_t>(nul - text) : length;
    sorted[t] = t;
  });
  if (!scan.ok()) return scan.status();
  bytes_ = bytes;
  max_token_length_ = scan.max_token_length;
  offsets_ = offsets;
  lengths_ = lengths;
  vocab_size_ = vocab_size;
  max_text_length_ = max_text_length;
  std::sort(sorted, sorted + vocab_size, [this](uint32_t a, uint32_t b) {
    const int c = CompareWithPair(Piece(a), Piece(b), {});
    return c < 0 || (c == 0 && a < b);
  });
  sorted_ = sorted;
  space_token_ = Lookup(" ", {});
  // The symbol a '\n' becomes in Encode: its token, or its byte fallback.
  // A merge across the newline joins a symbol ending with that symbol's
  // text to one after it, making a token whose text holds it with bytes
  // after it: breaks hold if no such token is the merge of its two sides
  // (an empty piece would hide the bytes, so any rules breaks out).
  const int32_t newline = Lookup("\n", {});
  const uint32_t newline_token = newline >= 0 ? static_cast<uint32_t>(newline) : '\n' + 3u;
  newline_breaks_ = newline_token < vocab_size;
  for (uint32_t t = 0; t < vocab_size && newline_breaks_; ++t) {
    const std::string_view piece = Piece(t), symbol = Piece(newline_token);
    newline_breaks_ = !piece.empty();
    for (size_t at = piece.find(symbol); newline_breaks_ && at != std::string_view::npos; at = piece.find(symbol, at + 1)) {
      const size_t cut = at + symbol.size();
      if (cut == piece.size()) break;
      const std::string_view left(piece.data(), cut), right(piece.data() + cut, piece.size() - cut);
      const int32_t merged = Lookup(left, right);
      newline_breaks_ = !(merged >= 0 && Score(static_cast<uint32_t>(merged)) > kNoMergeScore &&
                          Lookup(left, {}) >= 0 && Lookup(right, {}) >= 0);
    }
  }
  for (int b = 0; b < 256; ++b) byte_pieces_[b] = static_cast<char>(b);
  return Status::Ok();
}

std::string_view Llama2cTokenizer::Piece(uint32_t token) const {
  return {reinterpret_cast<const char*>(bytes_.data()) + offsets_[token], lengths_[token]};
}

float Llama2cTokenizer::Score(uint32_t token) const {
  float score;
  std::memcpy(&score, bytes_.data() + offsets_[token] - 8, sizeof score);
  return score;
}

int32_t Llama2cTokenizer::Lookup(std::string_view a, std::string_view b) const {
  if (a.size() + b.size() > max_token_length_) return -1;
  const uint32_t* end = sorted_ + vocab_size_;
  const uint32_t* it =
      std::partition_point(sorted_, end, [&](uint32_t token) { return CompareWithPair(Piece(token), a, b) < 0; });
  return it != end && CompareWithPair(Piece(*it), a, b) == 0 ? static_cast<int32_t>(*it) : -1;
}

void Llama2cTokenizer::Offer(const Symbol* symbols, uint32_t left, uint32_t right, Candidate* heap,
                             uint32_t& heap_size) const {
  const int32_t token = Lookup(Piece(symbols[left].token), Piece(symbols[right].token));
  if (token < 0) return;
  const float score = Score(static_cast<uint32_t>(token));
  if (!(score > kNoMergeScore)) return;
  heap[heap_size++] = {score, left, right, static_cast<uint32_t>(token), symbols[left].stamp, symbols[right].stamp};
  std::push_heap(heap, heap + heap_size, Candidate::LowerPriority);
}

size_t Llama2cTokenizer::BreakBefore(std::string_view text, size_t limit) const {
  if (!newline_breaks_ || text.size() < 2) return 0;
  for (size_t p = std::min(limit, text.size() - 1); p > 0; --p) {
    if (text[p - 1] == '\n' && static_cast<uint8_t>(text[p]) < 0x80u) return p;
  }
  return 0;
}

Result<uint32_t> Llama2cTokenizer::Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens,
                                          bool continuation) {
  if (text.size() > max_text_length_)
    return Error(StatusCode::kTooLarge, "text longer than the tokenizer workspace allows");
  if (tokens.size() < MaxTokens(text.size())) return Error(StatusCode::kTooLarge, "token buffer too small");
  const size_t mark = arena_.Mark();
  Symbol* symbols = arena_.Allocate<Symbol>(text.size() + 2);
  Candidate* heap = arena_.Allocate<Candidate>(3 * (text.size() + 2));
  if (symbols == nullptr || heap == nullptr) {
    arena_.Release(mark);
    return Error(StatusCode::kTooLarge, "tokenizer workspace too small");
  }

  uint32_t count = 0;
  auto append = [&](uint32_t token) { symbols[count++] = {token, 0, 0, 0}; };
  if (bos) append(kBos);
  // sentencepiece's add_dummy_prefix, as run.c approximates it.
  if (!text.empty() && !continuation) {
    if (space_token_ < 0) {
      arena_.Release(mark);
      return Error(StatusCode::kMissing, "vocabulary has no \" \" token for the dummy prefix");
    }
    append(static_cast<uint32_t>(space_token_));
  }
  // Whole UTF-8 codepoints (a lead byte and up to three continuation bytes)
  // when the vocabulary has them, else one byte token each.
  for (size_t i = 0; i < text.size();) {
    size_t length = 1;
    while (i + length < text.size() && (static_cast<uint8_t>(text[i + length]) & 0xC0u) == 0x80u && length < 4)
      ++length;
    const std::string_view codepoint(text.data() + i, length);
    if (const int32_t token = Lookup(codepoint, {}); token >= 0) {
      append(static_cast<uint32_t>(token));
    } else {
      for (const char byte : codepoint) {
        const uint32_t fallback = static_cast<uint8_t>(byte) + 3u;  // after <unk>, <s>, </s>
        if (fallback >= vocab_size_) {
          arena_.Release(mark);
          return Error(StatusCode::kInvalidValue, "byte fallback token outside the vocabulary");
        }
        append(fallback);
      }
    }
    i += length;
  }

  uint32_t heap_size = 0;
  for (uint32_t i = 0; i < count; ++i) {
    symbols[i].prev = static_cast<int32_t>(i) - 1;
    symbols[i].next = i + 1 < count ? static_cast<int32_t>(i + 1) : -1;
  }
  for (uint32_t i = 0; i + 1 < count; ++i) Offer(symbols, i, i + 1, heap, heap_size);

  while (heap_size > 0) {
    std::pop_heap(heap, heap + heap_size, Candidate::LowerPriority);
    const Candidate best = heap[--heap_size];
    Symbol& left = symbols[best.left];
    Symbol& right = symbols[best.right];
    if (left.stamp != best.left_stamp || right.stamp != best.right_stamp) continue;  // stale
    left.token = best.token;
    ++left.stamp;
    ++right.stamp;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = static_cast<int32_t>(best.left);
    if (left.prev >= 0) Offer(symbols, static_cast<uint32_t>(left.prev), best.left, heap, heap_size);
    if (left.next >= 0) Offer(symbols, best.left, static_cast<uint32_t>(left.next), heap, heap_size);
  }

  // Symbol 0 is never merged away (merges keep the left symbol).
  uint32_t n = 0;
  for (int32_t s = count > 0 ? 0 : -1; s >= 0; s = symbols[s].next) tokens[n++] = symbols[s].token;
  if (eos) tokens[n++] = kEos;
  arena_.Release(mark);
  return n;
}

std::string_view Llama2cTokenizer::Decode(uint32_t prev_token, uint32_t token) const {
  if (token >= vocab_size_) return {};
  std::string_view piece = Piece(token);
  if (prev_token == kBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  if (const int byte = RawByte(piece); byte >= 0) return {&byte_pieces_[byte], 1};
  return piece;
}

}  // namespace qmc
