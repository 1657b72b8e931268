#include "common/bpe_tokenizer.h"

#include <algorithm>
#include <cstring>

#include "common/nfc.h"
#include "common/unicode_tables.h"
#include "common/utf8.h"

namespace qmc {

using bpe::BpeAddedToken;
using bpe::BpeHeader;
using bpe::BpeLayout;
using bpe::BpeMerge;
using bpe::kNoToken;

struct BpeTokenizer::Symbol {
  uint32_t token;  // kNoToken once merged into its left neighbour
  int32_t prev;    // -1 at the ends
  int32_t next;
};

// A possible merge of symbol `left` with its right neighbour, valid while
// both still hold the tokens it was offered for: a merge only ever makes a
// symbol's text longer, so a symbol never holds the same token again.
struct BpeTokenizer::Candidate {
  uint32_t rank;
  uint32_t left;
  uint32_t left_token;
  uint32_t right_token;
  uint32_t result;

  // The lowest rank merges first, the leftmost on a tie (HuggingFace's order).
  static bool LowerPriority(const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

struct BpeTokenizer::Output {
  uint32_t* tokens;
  uint32_t count;
  void Append(uint32_t token) { tokens[count++] = token; }
};

namespace {

constexpr char kMarker[] = "\xE2\x96\x81";  // U+2581, sentencepiece's space
constexpr size_t kMarkerBytes = 3;

// Every byte value, for decoding a byte-fallback token to one byte.
constexpr struct ByteTable {
  char bytes[256];
  constexpr ByteTable() : bytes() {
    for (int b = 0; b < 256; ++b) bytes[b] = static_cast<char>(b);
  }
} kBytes;

BpeHeader ReadHeader(std::span<const uint8_t> bytes) {
  BpeHeader h{};
  if (bytes.size() >= sizeof h) std::memcpy(&h, bytes.data(), sizeof h);
  return h;
}

bool IsSentencePiece(const BpeHeader& h) { return h.model == static_cast<uint8_t>(bpe::Model::kSentencePiece); }

// s[pos, pos + n), clamped to s; pos <= s.size(). (string_view::substr
// would bring in an exception for the firmware.)
std::string_view Sub(std::string_view s, size_t pos, size_t n = SIZE_MAX) {
  return {s.data() + pos, std::min(n, s.size() - pos)};
}

// Bytewise order, a prefix first.
int Compare(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  if (const int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n); c != 0) return c;
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

// Bytes of normalized text, and symbols of one pre-token, for a text of n bytes.
size_t NormalizedBytes(const BpeHeader& h, size_t n) {
  if (IsSentencePiece(h)) return kMarkerBytes * (n + 1);  // the prepended marker, every space a marker
  return (h.flags & bpe::kFlagNfc) != 0 ? nfc::MaxOutputBytes(n) : 0;
}
size_t MaxSymbols(const BpeHeader& h, size_t n) {
  if (IsSentencePiece(h)) return n + 1;  // a character or a byte each, and the prepended marker
  return (h.flags & bpe::kFlagNfc) != 0 ? nfc::MaxOutputBytes(n) : n;
}

// The first position at or after `pos` that starts no whitespace character.
size_t SpaceEnd(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    const utf8::Unit u = utf8::Decode(text, pos);
    if (unicode::ClassOf(u.cp) != unicode::CharClass::kSpace) break;
    pos += u.length;
  }
  return pos;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xXX>" names the byte XX (HuggingFace's ByteFallback decoder).
int FallbackByte(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return -1;
  const int hi = HexDigit(piece[3]), lo = HexDigit(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class SectionCheck {
 public:
  explicit SectionCheck(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint32_t U32(uint64_t offset) const {
    uint32_t v;
    std::memcpy(&v, bytes_.data() + offset, sizeof v);
    return v;
  }
  std::string_view Text(const BpeLayout& l, uint32_t token) const {
    const uint32_t begin = U32(l.text_offsets + token * 4u), end = U32(l.text_offsets + (token + 1u) * 4u);
    return {reinterpret_cast<const char*>(bytes_.data() + l.text + begin), end - begin};
  }

 private:
  std::span<const uint8_t> bytes_;
};

}  // namespace

Status BpeTokenizer::Validate(std::span<const uint8_t> bytes, uint32_t vocab_size) {
  const BpeHeader h = ReadHeader(bytes);
  if (bytes.size() < sizeof h) return Error(StatusCode::kTruncated, "BPE tokenizer shorter than its header");
  if (h.magic != bpe::kMagic) return Error(StatusCode::kBadMagic, "not a BPE tokenizer");
  if (h.version != bpe::kVersion) return Error(StatusCode::kBadVersion, "unknown BPE tokenizer version");
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 4 != 0)
    return Error(StatusCode::kInvalidValue, "BPE tokenizer is not 4-byte aligned");
  const bool spm = IsSentencePiece(h);
  if (!spm && h.model != static_cast<uint8_t>(bpe::Model::kByteLevel))
    return Error(StatusCode::kInvalidValue, "unknown BPE model");
  if (h.pre_tokenizer > kLastPreTokenizer || (spm && h.pre_tokenizer != 0)) {
    return Error(StatusCode::kInvalidValue, "BPE pre-tokenizer unknown or not allowed for the model");
  }
  constexpr uint32_t kSpmOnly = bpe::kFlagPrependMarker | bpe::kFlagSpaceToMarker | bpe::kFlagStripSpaceAfterBos;
  if ((h.flags & ~bpe::kKnownFlags) != 0 || (!spm && (h.flags & kSpmOnly) != 0) ||
      (spm && (h.flags & bpe::kFlagNfc) != 0)) {
    return Error(StatusCode::kInvalidValue, "BPE flags unknown or not allowed for the model");
  }
  for (const uint32_t r : h.reserved) {
    if (r != 0) return Error(StatusCode::kInvalidValue, "BPE reserved header fields are not zero");
  }
  if (h.token_count == 0 || h.token_count > vocab_size)
    return Error(StatusCode::kShapeMismatch, "BPE token count exceeds the model's vocab_size");
  if (h.vocab_count > h.token_count)
    return Error(StatusCode::kInvalidValue, "BPE vocabulary larger than its token count");
  const BpeLayout l = BpeLayout::Of(h);
  if (l.end != bytes.size()) return Error(StatusCode::kShapeMismatch, "BPE tokenizer size does not match its counts");
  const SectionCheck s(bytes);

  if (s.U32(l.text_offsets) != 0) return Error(StatusCode::kInvalidValue, "BPE token texts do not start at 0");
  uint32_t longest = 0;
  for (uint32_t t = 0; t < h.token_count; ++t) {
    const uint32_t begin = s.U32(l.text_offsets + t * 4u), end = s.U32(l.text_offsets + (t + 1u) * 4u);
    if (end <= begin || end > h.text_bytes)
      return Error(StatusCode::kOutOfBounds, "BPE token text empty or out of bounds");
    longest = std::max(longest, end - begin);
  }
  if (longest > bpe::kMaxTokenBytes) return Error(StatusCode::kTooLarge, "BPE token text longer than 1024 bytes");
  if (s.U32(l.text_offsets + h.token_count * 4u) != h.text_bytes || longest != h.max_token_bytes) {
    return Error(StatusCode::kInvalidValue, "BPE token texts do not match text_bytes or max_token_bytes");
  }
  for (uint32_t b = 0; b < 256; ++b) {
    if (s.U32(l.byte_tokens + b * 4u) >= h.token_count)
      return Error(StatusCode::kOutOfBounds, "BPE byte token out of range");
  }
  for (uint32_t i = 0; i < h.vocab_count; ++i) {
    const uint32_t id = s.U32(l.vocab_sorted + i * 4u);
    if (id >= h.token_count) return Error(StatusCode::kOutOfBounds, "BPE vocabulary id out of range");
    if (i > 0 && Compare(s.Text(l, s.U32(l.vocab_sorted + (i - 1u) * 4u)), s.Text(l, id)) >= 0) {
      return Error(StatusCode::kInvalidValue, "BPE vocabulary not in strictly ascending text order");
    }
  }
  if (spm && (h.flags & (bpe::kFlagPrependMarker | bpe::kFlagSpaceToMarker)) != 0) {
    // Each space becomes one marker symbol: the workspace bounds count on it.
    uint32_t lo = 0, hi = h.vocab_count;
    const std::string_view marker(kMarker, kMarkerBytes);
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (Compare(s.Text(l, s.U32(l.vocab_sorted + mid * 4u)), marker) < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == h.vocab_count || s.Text(l, s.U32(l.vocab_sorted + lo * 4u)) != marker) {
      return Error(StatusCode::kMissing, "sentencepiece BPE vocabulary has no U+2581 token");
    }
  }
  uint64_t previous_key = 0;
  for (uint32_t i = 0; i < h.merge_count; ++i) {
    BpeMerge m;
    std::memcpy(&m, bytes.data() + l.merges + i * sizeof m, sizeof m);
    if (m.left >= h.token_count || m.right >= h.token_count || m.result >= h.token_count || m.rank >= h.merge_count) {
      return Error(StatusCode::kOutOfBounds, "BPE merge id or rank out of range");
    }
    const uint64_t key = uint64_t{m.left} << 32 | m.right;
    if (i > 0 && key <= previous_key)
      return Error(StatusCode::kInvalidValue, "BPE merges not in strictly ascending pair order");
    previous_key = key;
  }
  for (uint32_t i = 0; i < h.added_count; ++i) {
    BpeAddedToken a;
    std::memcpy(&a, bytes.data() + l.added + i * sizeof a, sizeof a);
    if (a.id >= h.token_count || (a.flags & ~bpe::kKnownAddedFlags) != 0) {
      return Error(StatusCode::kInvalidValue, "BPE added token id or flags out of range");
    }
    if (i > 0 && Compare(s.Text(l, s.U32(l.added + (i - 1u) * sizeof a)), s.Text(l, a.id)) >= 0) {
      return Error(StatusCode::kInvalidValue, "BPE added tokens not in strictly ascending text order");
    }
  }
  const auto valid_special = [&](uint32_t id, uint32_t add_flag) {
    return id == kNoToken ? (h.flags & add_flag) == 0 : id < h.token_count;
  };
  if (!valid_special(h.bos, bpe::kFlagAddBos) || !valid_special(h.eos, bpe::kFlagAddEos)) {
    return Error(StatusCode::kInvalidValue, "BPE BOS or EOS out of range");
  }
  return Status::Ok();
}

size_t BpeTokenizer::WorkspaceBytes(std::span<const uint8_t> bytes, size_t max_text_length) {
  BpeHeader h = ReadHeader(bytes);
  if (h.magic != bpe::kMagic) h.flags = bpe::kFlagNfc;  // unreadable: the largest, Init refuses it anyway
  const size_t n = max_text_length;
  const size_t symbols = MaxSymbols(h, n);
  // A pre-token of s symbols offers at most s - 1 merges, and each merge two more.
  return Arena::kStartPadding + Arena::Footprint<char>(NormalizedBytes(h, n)) +
         ((h.flags & bpe::kFlagNfc) != 0 ? Arena::Footprint<uint64_t>(nfc::ScratchEntries(n)) : 0) +
         Arena::Footprint<Symbol>(symbols) + Arena::Footprint<Candidate>(3 * symbols) +
         Arena::Footprint<char>(h.max_token_bytes);
}

size_t BpeTokenizer::MaxTokens(size_t text_length) const {
  // Added tokens and stretches between them split the text; a stretch of
  // n bytes yields at most a token per byte of its normalized text (and
  // sentencepiece one more, the prepended marker, paid for by the added
  // token that ends the stretch).
  if (IsSentencePiece(header_)) return 2 * text_length + 3;
  return ((header_.flags & bpe::kFlagNfc) != 0 ? nfc::MaxOutputBytes(text_length) : text_length) + 2;
}

Status BpeTokenizer::Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
                          size_t max_text_length) {
  header_ = {};
  base_ = nullptr;
  max_text_length_ = 0;
  if (Status s = Validate(bytes, vocab_size); !s.ok()) return s;
  if (workspace.size() < WorkspaceBytes(bytes, max_text_length))
    return Error(StatusCode::kTooLarge, "tokenizer workspace too small");
  const BpeHeader h = ReadHeader(bytes);
  const BpeLayout l = BpeLayout::Of(h);
  base_ = bytes.data();
  byte_tokens_ = reinterpret_cast<const uint32_t*>(base_ + l.byte_tokens);
  text_offsets_ = reinterpret_cast<const uint32_t*>(base_ + l.text_offsets);
  vocab_sorted_ = reinterpret_cast<const uint32_t*>(base_ + l.vocab_sorted);
  merges_ = reinterpret_cast<const BpeMerge*>(base_ + l.merges);
  added_ = reinterpret_cast<const BpeAddedToken*>(base_ + l.added);
  text_ = reinterpret_cast<const char*>(base_ + l.text);
  header_ = h;

  std::fill(std::begin(added_first_bytes_), std::end(added_first_bytes_), 0u);
  max_added_bytes_ = 0;
  for (uint32_t i = 0; i < h.added_count; ++i) {
    const std::string_view t = Text(added_[i].id);
    const auto first = static_cast<uint8_t>(t[0]);
    added_first_bytes_[first / 32] |= 1u << (first % 32);
    max_added_bytes_ = std::max(max_added_bytes_, static_cast<uint32_t>(t.size()));
  }

  // Sentencepiece merges over a whole stretch: a merge across a '\n' makes
  // a token whose text holds the newline symbol's text with bytes after
  // it. With ignore_merges a stretch that is one token would be cut apart.
  newline_breaks_ = false;
  if (IsSentencePiece(h) && (h.flags & bpe::kFlagIgnoreMerges) == 0) {
    const uint32_t lone = LookupVocab("\n");
    const std::string_view symbol = Text(lone != kNoToken ? lone : byte_tokens_[static_cast<uint8_t>('\n')]);
    newline_breaks_ = true;
    for (uint32_t t = 0; t < h.token_count && newline_breaks_; ++t) {
      const std::string_view piece = Text(t);
      const size_t at = piece.find(symbol);
      newline_breaks_ = at == std::string_view::npos || at + symbol.size() == piece.size();
    }
  }

  arena_ = Arena(workspace);
  const size_t n = max_text_length;
  normalized_ = arena_.Allocate<char>(NormalizedBytes(h, n));
  nfc_scratch_ = (h.flags & bpe::kFlagNfc) != 0 ? arena_.Allocate<uint64_t>(nfc::ScratchEntries(n)) : nullptr;
  symbols_ = arena_.Allocate<Symbol>(MaxSymbols(h, n));
  heap_ = arena_.Allocate<Candidate>(3 * MaxSymbols(h, n));
  decoded_ = arena_.Allocate<char>(h.max_token_bytes);
  max_text_length_ = max_text_length;
  return Status::Ok();
}

std::string_view BpeTokenizer::Text(uint32_t token) const {
  return {text_ + text_offsets_[token], text_offsets_[token + 1] - text_offsets_[token]};
}

uint32_t BpeTokenizer::LookupVocab(std::string_view text) const {
  if (text.size() > header_.max_token_bytes) return kNoToken;
  const uint32_t* end = vocab_sorted_ + header_.vocab_count;
  const uint32_t* it = std::partition_point(vocab_sorted_, end, [&](uint32_t t) { return Compare(Text(t), text) < 0; });
  return it != end && Text(*it) == text ? *it : kNoToken;
}

const BpeMerge* BpeTokenizer::LookupMerge(uint32_t left, uint32_t right) const {
  const BpeMerge* end = merges_ + header_.merge_count;
  const BpeMerge* it = std::partition_point(
      merges_, end, [&](const BpeMerge& m) { return m.left < left || (m.left == left && m.right < right); });
  return it != end && it->left == left && it->right == right ? it : nullptr;
}

const BpeAddedToken* BpeTokenizer::AddedTokenAt(std::string_view rest) const {
  const auto first = static_cast<uint8_t>(rest[0]);
  if ((added_first_bytes_[first / 32] >> (first % 32) & 1u) == 0) return nullptr;
  // The last added text at or before `s` in order is the longest prefix of
  // `s` if it is a prefix at all; otherwise no prefix is longer than what
  // the two share, so search again for that.
  std::string_view s = Sub(rest, 0, max_added_bytes_);
  const BpeAddedToken* end = added_ + header_.added_count;
  while (!s.empty()) {
    const BpeAddedToken* it =
        std::partition_point(added_, end, [&](const BpeAddedToken& a) { return Compare(Text(a.id), s) <= 0; });
    if (it == added_) return nullptr;
    const std::string_view candidate = Text(it[-1].id);
    if (s.starts_with(candidate)) return it - 1;
    size_t common = 0;
    while (common < candidate.size() && candidate[common] == s[common]) ++common;
    s = Sub(s, 0, common);
  }
  return nullptr;
}

void BpeTokenizer::Offer(const Symbol* symbols, uint32_t left, Candidate* heap, uint32_t& heap_size) const {
  const uint32_t left_token = symbols[left].token, right_token = symbols[symbols[left].next].token;
  const BpeMerge* merge = LookupMerge(left_token, right_token);
  if (merge == nullptr) return;
  heap[heap_size++] = {merge->rank, left, left_token, right_token, merge->result};
  std::push_heap(heap, heap + heap_size, Candidate::LowerPriority);
}

void BpeTokenizer::EncodeWord(std::string_view word, Output& out) {
  if ((header_.flags & bpe::kFlagIgnoreMerges) != 0) {
    if (const uint32_t whole = LookupVocab(word); whole != kNoToken) {
      out.Append(whole);
      return;
    }
  }
  Symbol* symbols = symbols_;
  uint32_t count = 0;
  if (IsSentencePiece(header_)) {
    // A character in the vocabulary is a symbol; any other falls back to its bytes.
    for (size_t pos = 0; pos < word.size();) {
      const size_t length = utf8::Decode(word, pos).length;
      if (const uint32_t token = LookupVocab(Sub(word, pos, length)); token != kNoToken) {
        symbols[count++].token = token;
      } else {
        for (size_t i = 0; i < length; ++i) symbols[count++].token = byte_tokens_[static_cast<uint8_t>(word[pos + i])];
      }
      pos += length;
    }
  } else {
    for (const char byte : word) symbols[count++].token = byte_tokens_[static_cast<uint8_t>(byte)];
  }
  for (uint32_t i = 0; i < count; ++i) {
    symbols[i].prev = static_cast<int32_t>(i) - 1;
    symbols[i].next = i + 1 < count ? static_cast<int32_t>(i + 1) : -1;
  }

  Candidate* heap = heap_;
  uint32_t heap_size = 0;
  for (uint32_t i = 0; i + 1 < count; ++i) Offer(symbols, i, heap, heap_size);
  while (heap_size > 0) {
    std::pop_heap(heap, heap + heap_size, Candidate::LowerPriority);
    const Candidate best = heap[--heap_size];
    Symbol& left = symbols[best.left];
    if (left.token != best.left_token || left.next < 0 || symbols[left.next].token != best.right_token)
      continue;  // stale
    Symbol& right = symbols[left.next];
    left.token = best.result;
    right.token = kNoToken;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = static_cast<int32_t>(best.left);
    if (left.prev >= 0) Offer(symbols, static_cast<uint32_t>(left.prev), heap, heap_size);
    if (left.next >= 0) Offer(symbols, best.left, heap, heap_size);
  }
  // Symbol 0 is never merged away (merges keep the left symbol).
  for (int32_t s = count > 0 ? 0 : -1; s >= 0; s = symbols[s].next) out.Append(symbols[s].token);
}

void BpeTokenizer::EncodeSegment(std::string_view segment, bool marker, Output& out) {
  if (segment.empty()) return;
  if (IsSentencePiece(header_)) {
    size_t length = 0;
    if (marker && (header_.flags & bpe::kFlagPrependMarker) != 0) {
      std::memcpy(normalized_, kMarker, kMarkerBytes);
      length = kMarkerBytes;
    }
    for (const char c : segment) {
      if (c == ' ' && (header_.flags & bpe::kFlagSpaceToMarker) != 0) {
        std::memcpy(normalized_ + length, kMarker, kMarkerBytes);
        length += kMarkerBytes;
      } else {
        normalized_[length++] = c;
      }
    }
    EncodeWord({normalized_, length}, out);  // sentencepiece BPE has no pre-tokenizer
    return;
  }
  if ((header_.flags & bpe::kFlagNfc) != 0 && !nfc::IsInert(segment)) {
    segment = {normalized_, nfc::Normalize(segment, nfc_scratch_, normalized_)};
  }
  const auto kind = static_cast<PreTokenizer>(header_.pre_tokenizer);
  for (size_t start = 0; start < segment.size();) {
    const size_t end = PreTokenEnd(kind, segment, start);
    EncodeWord(Sub(segment, start, end - start), out);
    start = end;
  }
}

template <typename OnSegment, typename OnAdded>
void BpeTokenizer::Split(std::string_view text, OnSegment&& on_segment, OnAdded&& on_added) const {
  // Added tokens cut the raw text; lstrip/rstrip ones take the whitespace
  // beside them along (not past the previous match).
  const auto is_space = [](std::string_view s, size_t pos) {
    const utf8::Unit u = utf8::Decode(s, pos);
    return unicode::ClassOf(u.cp) == unicode::CharClass::kSpace;
  };
  size_t segment_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const BpeAddedToken* added = AddedTokenAt(Sub(text, pos));
    if (added == nullptr) {
      ++pos;
      continue;
    }
    size_t segment_end = pos;
    if ((added->flags & bpe::kAddedLstrip) != 0) {
      while (segment_end > segment_start) {
        size_t lead = segment_end - 1;  // back to the start of the previous character
        while (lead > segment_start && (static_cast<uint8_t>(text[lead]) & 0xC0u) == 0x80u) --lead;
        if (!is_space(text, lead) || utf8::Decode(text, lead).length != segment_end - lead) break;
        segment_end = lead;
      }
    }
    pos += Text(added->id).size();
    if ((added->flags & bpe::kAddedRstrip) != 0) {
      while (pos < text.size() && is_space(text, pos)) pos += utf8::Decode(text, pos).length;
    }
    on_segment(segment_start, segment_end);
    on_added(added->id);
    segment_start = pos;
  }
  on_segment(segment_start, text.size());
}

Result<uint32_t> BpeTokenizer::Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens,
                                      bool continuation) {
  if (base_ == nullptr) return Error(StatusCode::kMissing, "tokenizer not initialised");
  if (text.size() > max_text_length_)
    return Error(StatusCode::kTooLarge, "text longer than the tokenizer workspace allows");
  if (tokens.size() < MaxTokens(text.size())) return Error(StatusCode::kTooLarge, "token buffer too small");
  if ((bos && header_.bos == kNoToken) || (eos && header_.eos == kNoToken)) {
    return Error(StatusCode::kMissing, "the tokenizer has no BOS or EOS token to add");
  }
  Output out{tokens.data(), 0};
  if (bos) out.Append(header_.bos);
  bool marker = !continuation;  // a continuation's first stretch goes on one begun earlier
  Split(
      text,
      [&](size_t begin, size_t end) {
        EncodeSegment(Sub(text, begin, end - begin), marker, out);
        marker = true;
      },
      [&](uint32_t id) { out.Append(id); });
  if (eos) out.Append(header_.eos);
  return out.count;
}

size_t BpeTokenizer::BreakBefore(std::string_view text, size_t limit) {
  if (base_ == nullptr || text.size() < 2) return 0;
  if (IsSentencePiece(header_) ? !newline_breaks_ : header_.pre_tokenizer == 0) return 0;
  limit = std::min(limit, text.size() - 1);
  // What decides a break at p <= limit lies before the end of the
  // whitespace after p and an added token's length past it: cut the text
  // there (for NFC, at the next '\n', where NFC of the cut is exact).
  const size_t ahead = std::max<size_t>(4, max_added_bytes_) + 1;
  size_t end = std::min(text.size(), SpaceEnd(text, limit) + ahead);
  if ((header_.flags & bpe::kFlagNfc) != 0) {
    const void* newline = std::memchr(text.data() + end, '\n', text.size() - end);
    end = newline != nullptr ? static_cast<size_t>(static_cast<const char*>(newline) - text.data()) + 1 : text.size();
  }
  const std::string_view view = Sub(text, 0, end);
  size_t best = 0;
  Split(
      view,
      [&](size_t begin, size_t stop) {
        if (begin < limit) {
          const bool truncated = stop == view.size() && end < text.size();
          best = std::max(best, SegmentBreak(view, begin, stop, limit, truncated));
        }
      },
      [](uint32_t) {});
  return best;
}

size_t BpeTokenizer::SegmentBreak(std::string_view view, size_t begin, size_t end, size_t limit, bool truncated) {
  const size_t ahead = std::max<size_t>(4, max_added_bytes_) + 1;
  // In a stretch cut short, a break must not depend on what lies past the
  // cut: the whitespace after it (lstrip, whitespace runs) and an added
  // token starting there end before it.
  const auto settled = [&](std::string_view s, size_t p) { return !truncated || SpaceEnd(s, p) + ahead < s.size(); };
  if (end <= begin + 1) return 0;
  if (IsSentencePiece(header_)) {
    const std::string_view stretch = Sub(view, 0, end);
    for (size_t p = std::min(limit, end - 1); p > begin; --p) {
      if (stretch[p - 1] == '\n' && static_cast<uint8_t>(stretch[p]) < 0x80u && settled(stretch, p)) return p;
    }
    return 0;
  }

  std::string_view raw = Sub(view, begin, end - begin), stretch = raw;
  const bool normalized = (header_.flags & bpe::kFlagNfc) != 0 && !nfc::IsInert(raw);
  if (normalized) {
    if (raw.size() > max_text_length_) {  // what the workspace holds, to a '\n'
      size_t cut = max_text_length_;
      while (cut > 0 && raw[cut - 1] != '\n') --cut;
      raw = Sub(raw, 0, cut);
      truncated = true;
    }
    stretch = {normalized_, nfc::Normalize(raw, nfc_scratch_, normalized_)};
  }
  // Breaks are pre-token starts after a '\n'. Cutting the stretch at p can
  // change only pre-tokens whose matching reads text[p]: a matcher reads
  // past its pre-token's end at most one character, except through a
  // whitespace run (\s+(?!\S) ends a character short of the run;
  // \s*[\r\n]+ ends past the run's last line break, so past the '\n' at
  // p - 1 if the run holds it). So only the pre-token holding p - 1 and
  // the one before it can change: matched again in the cut text, both must
  // end where they did.
  const auto kind = static_cast<PreTokenizer>(header_.pre_tokenizer);
  size_t best = 0;
  size_t prev = SIZE_MAX, before_prev = SIZE_MAX;  // the last two pre-token starts
  size_t stretch_newline = 0, raw_newline = 0;     // just past the same '\n' in both: NFC keeps each '\n', adds none
  for (size_t start = 0; start < stretch.size();) {
    if (start > 0 && stretch[start - 1] == '\n') {
      size_t p = begin + start;
      if (normalized) {
        while (stretch_newline < start) {
          const void* s = std::memchr(stretch.data() + stretch_newline, '\n', stretch.size() - stretch_newline);
          const void* r = std::memchr(raw.data() + raw_newline, '\n', raw.size() - raw_newline);
          if (s == nullptr || r == nullptr) return best;
          stretch_newline = static_cast<size_t>(static_cast<const char*>(s) - stretch.data()) + 1;
          raw_newline = static_cast<size_t>(static_cast<const char*>(r) - raw.data()) + 1;
        }
        p = begin + raw_newline;
      }
      if (p > limit) break;
      const std::string_view cut = Sub(stretch, 0, start);
      if (settled(stretch, start) && (before_prev == SIZE_MAX || PreTokenEnd(kind, cut, before_prev) == prev) &&
          PreTokenEnd(kind, cut, prev) == start) {
        best = p;
      }
    }
    const size_t next = PreTokenEnd(kind, stretch, start);
    before_prev = prev;
    prev = start;
    start = next;
  }
  return best;
}

std::string_view BpeTokenizer::Decode(uint32_t prev_token, uint32_t token) const {
  if (base_ == nullptr || token >= header_.token_count) return {};
  const std::string_view piece = Text(token);
  if (!IsSentencePiece(header_)) return piece;
  if (const int byte = FallbackByte(piece); byte >= 0) return {&kBytes.bytes[byte], 1};
  size_t length = 0;
  for (size_t i = 0; i < piece.size();) {
    if (Sub(piece, i, kMarkerBytes) == std::string_view(kMarker, kMarkerBytes)) {
      decoded_[length++] = ' ';
      i += kMarkerBytes;
    } else {
      decoded_[length++] = piece[i++];
    }
  }
  std::string_view text(decoded_, length);
  if ((header_.flags & bpe::kFlagStripSpaceAfterBos) != 0 && prev_token == header_.bos && text.starts_with(' ')) {
    text.remove_prefix(1);
  }
  return text;
}

}  // namespace qmc
