#include "common/nfc.h"

#include <algorithm>

#include "common/utf8.h"

namespace qmc::nfc {
namespace {

// A scratch entry: combining class << 56 | position << 24 | codepoint, so
// that sorting a run of non-starters orders it by class, stably.
constexpr uint64_t kCodepointMask = (1u << 24) - 1;
// The codepoint field of a malformed byte: out of Unicode's range, class 0.
constexpr uint32_t kMalformedBase = 0x200000;

// Hangul syllables decompose and compose arithmetically (Unicode 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint32_t CodepointOf(uint64_t entry) { return static_cast<uint32_t>(entry & kCodepointMask); }
uint8_t ClassOfEntry(uint64_t entry) { return static_cast<uint8_t>(entry >> 56); }

class Decomposer {
 public:
  explicit Decomposer(uint64_t* out) : out_(out) {}

  void Add(uint32_t cp) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
      const uint32_t s = cp - kSBase;
      Push(kLBase + s / kNCount);
      Push(kVBase + s % kNCount / kTCount);
      if (s % kTCount != 0) Push(kTBase + s % kTCount);
      return;
    }
    uint32_t first, second;
    if (cp >= 0xC0 && unicode::Decompose(cp, first, second)) {  // U+00C0 is the first to decompose
      Add(first);                                               // canonical mappings nest a few levels at most
      if (second != 0) Add(second);
      return;
    }
    Push(cp);
  }
  void AddMalformed(uint8_t byte) {
    out_[count_] = static_cast<uint64_t>(count_) << 24 | (kMalformedBase + byte), ++count_;
  }
  size_t count() const { return count_; }

 private:
  void Push(uint32_t cp) {
    const uint64_t ccc = cp < unicode::kNfcInertBelow ? 0 : unicode::CombiningClass(cp);
    out_[count_] = ccc << 56 | static_cast<uint64_t>(count_) << 24 | cp;
    ++count_;
  }

  uint64_t* out_;
  size_t count_ = 0;
};

// The composite of a starter and the character that follows it, or 0.
uint32_t Composite(uint32_t starter, uint32_t cp) {
  if (starter >= kLBase && starter < kLBase + kLCount && cp >= kVBase && cp < kVBase + kVCount) {
    return kSBase + ((starter - kLBase) * kVCount + (cp - kVBase)) * kTCount;
  }
  if (starter >= kSBase && starter < kSBase + kSCount && (starter - kSBase) % kTCount == 0 && cp > kTBase &&
      cp < kTBase + kTCount) {
    return starter + (cp - kTBase);
  }
  if (starter >= kMalformedBase || cp >= kMalformedBase) return 0;
  return unicode::Compose(starter, cp);
}

}  // namespace

bool IsInert(std::string_view text) {
  // U+0300 is 0xCC 0x80; a byte below 0xCC starts nothing at or past it.
  static_assert(unicode::kNfcInertBelow == 0x300);
  for (const char c : text) {
    if (static_cast<uint8_t>(c) >= 0xCC) return false;
  }
  return true;
}

size_t Normalize(std::string_view text, uint64_t* scratch, char* out) {
  // Full canonical decomposition.
  Decomposer decomposer(scratch);
  for (size_t pos = 0; pos < text.size();) {
    const utf8::Unit unit = utf8::Decode(text, pos);
    if (unit.cp == utf8::kMalformed) {
      decomposer.AddMalformed(static_cast<uint8_t>(text[pos]));
    } else {
      decomposer.Add(unit.cp);
    }
    pos += unit.length;
  }
  const size_t count = decomposer.count();

  // Canonical ordering: each run of non-starters sorted by class, stably.
  for (size_t i = 0; i < count;) {
    if (ClassOfEntry(scratch[i]) == 0) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < count && ClassOfEntry(scratch[end]) != 0) ++end;
    std::sort(scratch + i, scratch + end);
    i = end;
  }

  // Canonical composition, in place: a character joins the last starter
  // when nothing between them blocks it (a starter, or a class at least its own).
  size_t kept = 0;
  size_t starter = SIZE_MAX;
  uint8_t last_class = 0;
  for (size_t i = 0; i < count; ++i) {
    const uint32_t cp = CodepointOf(scratch[i]);
    const uint8_t ccc = ClassOfEntry(scratch[i]);
    if (starter != SIZE_MAX && (starter + 1 == kept || last_class < ccc)) {
      if (const uint32_t composite = Composite(CodepointOf(scratch[starter]), cp); composite != 0) {
        scratch[starter] = composite;  // a primary composite is a starter
        continue;
      }
    }
    scratch[kept++] = static_cast<uint64_t>(ccc) << 56 | cp;
    last_class = ccc;
    if (ccc == 0) starter = kept - 1;
  }

  size_t length = 0;
  for (size_t i = 0; i < kept; ++i) {
    const uint32_t cp = CodepointOf(scratch[i]);
    if (cp >= kMalformedBase) {
      out[length++] = static_cast<char>(cp - kMalformedBase);
    } else {
      length += utf8::Encode(cp, out + length);
    }
  }
  return length;
}

}  // namespace qmc::nfc
