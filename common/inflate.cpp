// Canonical-Huffman decoding after Mark Adler's puff.c (zlib's reference
// decoder), which also defines which code descriptions are valid, plus a
// one-lookup table for the short codes that make up most of the stream.
#include "common/inflate.h"

namespace qmc {
namespace {

constexpr int kMaxCodeBits = 15;        // RFC 1951: no code is longer
constexpr int kMaxLitLenSymbols = 286;  // a dynamic block may declare no more
constexpr int kMaxDistSymbols = 30;
constexpr int kFixedLitLenSymbols = 288;  // the fixed code also assigns 286, 287 (never valid)
constexpr int kFixedDistSymbols = 32;     // and distance symbols 30, 31 (never valid)
constexpr int kCodeLengthSymbols = 19;
constexpr int kEndOfBlock = 256;

// RFC 1951 §3.2.5: base value and extra bits of length symbols 257..285 and
// distance symbols 0..29.
constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,  7,  8,  9,  10,  11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint16_t kDistBase[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                    33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// RFC 1951 §3.2.7: the order in which code-length code lengths are sent.
constexpr uint8_t kCodeLengthOrder[kCodeLengthSymbols] = {16, 17, 18, 0,  8, 7,  9, 6,  10, 5,
                                                          11, 4,  12, 3, 13, 2, 14, 1, 15};

constexpr Status kOutputFull = Error(StatusCode::kTooLarge, "inflate: output does not fit");
constexpr Status kInputEnds = Error(StatusCode::kTruncated, "inflate: input ends early");
constexpr Status kBadBlockType = Error(StatusCode::kInvalidValue, "inflate: invalid block type");
constexpr Status kBadStoredLength =
    Error(StatusCode::kInvalidValue, "inflate: stored block length does not match its complement");
constexpr Status kTooManySymbols = Error(StatusCode::kInvalidValue, "inflate: too many length or distance symbols");
constexpr Status kOversubscribed = Error(StatusCode::kInvalidValue, "inflate: oversubscribed Huffman code");
constexpr Status kIncomplete = Error(StatusCode::kInvalidValue, "inflate: incomplete Huffman code");
constexpr Status kRepeatFirst = Error(StatusCode::kInvalidValue, "inflate: code length repeat with no previous length");
constexpr Status kTooManyLengths = Error(StatusCode::kInvalidValue, "inflate: code lengths exceed the declared count");
constexpr Status kNoEndOfBlock = Error(StatusCode::kInvalidValue, "inflate: no end-of-block code");
constexpr Status kNoSuchCode = Error(StatusCode::kInvalidValue, "inflate: bit pattern matches no Huffman code");
constexpr Status kBadLengthSymbol = Error(StatusCode::kInvalidValue, "inflate: invalid length symbol");
constexpr Status kBadDistSymbol = Error(StatusCode::kInvalidValue, "inflate: invalid distance symbol");
constexpr Status kTooFarBack = Error(StatusCode::kOutOfBounds, "inflate: distance too far back");
constexpr Status kTrailingBytes = Error(StatusCode::kInvalidValue, "inflate: trailing bytes after the final block");

// A canonical Huffman code as puff.c keeps it (codes per length, symbols in
// code order), plus `fast`: indexed by the next kFastBits input bits, the
// entry is symbol << 4 | code length for codes of at most kFastBits bits and
// 0 where no such code starts, which sends decoding to the bitwise path.
template <int kSymbols, int kFastBits>
struct HuffmanCode {
  static_assert(kFastBits < 16 && kSymbols <= 4096);  // an entry must fit 16 bits
  uint16_t count[kMaxCodeBits + 1];
  uint16_t symbol[kSymbols];
  uint16_t fast[1 << kFastBits];
};

// Nine bits hold every fixed literal/length code; 2.2 KiB of tables in all.
using LitLenCode = HuffmanCode<kFixedLitLenSymbols, 9>;
using DistCode = HuffmanCode<kFixedDistSymbols, 8>;

// How a set of code lengths fills the code space.
enum class Fill { kComplete, kSingle, kEmpty, kIncomplete, kOversubscribed };

template <int kSymbols, int kFastBits>
Fill BuildCode(HuffmanCode<kSymbols, kFastBits>& h, const uint8_t* lengths, int n) {
  for (auto& c : h.count) c = 0;
  for (int s = 0; s < n; ++s) ++h.count[lengths[s]];
  const int coded = n - h.count[0];
  int left = 1;  // code space not yet assigned, in units of the current length
  for (int len = 1; len <= kMaxCodeBits; ++len) {
    left = 2 * left - h.count[len];
    if (left < 0) return Fill::kOversubscribed;
  }
  uint16_t offset[kMaxCodeBits + 1];
  offset[1] = 0;
  for (int len = 1; len < kMaxCodeBits; ++len) offset[len + 1] = static_cast<uint16_t>(offset[len] + h.count[len]);
  for (int s = 0; s < n; ++s) {
    if (lengths[s] != 0) h.symbol[offset[lengths[s]]++] = static_cast<uint16_t>(s);
  }
  // Deflate sends codes most significant bit first into a stream read from
  // the least significant bit, so a code's table index is its bit reversal.
  for (auto& e : h.fast) e = 0;
  int code = 0;
  int index = 0;
  for (int len = 1; len <= kFastBits; ++len) {
    for (int k = 0; k < h.count[len]; ++k, ++code, ++index) {
      int reversed = 0;
      for (int b = 0; b < len; ++b) reversed |= ((code >> b) & 1) << (len - 1 - b);
      const auto entry = static_cast<uint16_t>(h.symbol[index] << 4 | len);
      for (int i = reversed; i < (1 << kFastBits); i += 1 << len) h.fast[i] = entry;
    }
    code <<= 1;
  }
  if (left == 0) return Fill::kComplete;
  if (coded == 0) return Fill::kEmpty;
  return coded == 1 && h.count[1] == 1 ? Fill::kSingle : Fill::kIncomplete;
}

class Inflater {
 public:
  Inflater(std::span<const uint8_t> in, std::span<uint8_t> out) : in_(in), out_(out) {}

  Result<size_t> Run() {
    uint32_t last = 0;
    do {
      uint32_t type = 0;
      if (!Bits(1, last) || !Bits(2, type)) return status_;
      bool ok = false;
      switch (type) {
        case 0: ok = Stored(); break;
        case 1: ok = FixedTables() && Codes(); break;
        case 2: ok = DynamicTables() && Codes(); break;
        default: ok = Fail(kBadBlockType); break;
      }
      if (!ok) return status_;
    } while (last == 0);
    // Only the final byte's padding bits may remain unread.
    if (bitcnt_ >= 8 || in_pos_ != in_.size()) return kTrailingBytes;
    return out_pos_;
  }

 private:
  bool Fail(const Status& s) {
    status_ = s;
    return false;
  }
  int FailSymbol(const Status& s) {
    status_ = s;
    return -1;
  }

  // Tops the bit buffer up to at least 57 bits, as far as the input goes.
  void Refill() {
    while (bitcnt_ <= 56 && in_pos_ < in_.size()) {
      buf_ |= static_cast<uint64_t>(in_[in_pos_++]) << bitcnt_;
      bitcnt_ += 8;
    }
  }

  void Drop(int n) {
    buf_ >>= n;
    bitcnt_ -= n;
  }

  bool Bits(int n, uint32_t& value) {
    if (bitcnt_ < n) {
      Refill();
      if (bitcnt_ < n) return Fail(kInputEnds);
    }
    value = static_cast<uint32_t>(buf_ & ((uint64_t{1} << n) - 1));
    Drop(n);
    return true;
  }

  // The next symbol, or -1. Bits past the end of the input read as zeros in
  // the table lookup, so a found code counts only if the input holds it all.
  template <int kSymbols, int kFastBits>
  int Decode(const HuffmanCode<kSymbols, kFastBits>& h) {
    if (bitcnt_ < kMaxCodeBits) Refill();
    const uint16_t entry = h.fast[buf_ & ((1u << kFastBits) - 1)];
    if (entry != 0) {
      const int len = entry & 15;
      if (len > bitcnt_) return FailSymbol(kInputEnds);
      Drop(len);
      return entry >> 4;
    }
    // puff.c's decode(): a code of length len is valid when it lies within
    // the `count` codes that start at `first`.
    int code = 0;
    int first = 0;
    int index = 0;
    for (int len = 1; len <= kMaxCodeBits; ++len) {
      if (len > bitcnt_) return FailSymbol(kInputEnds);
      code |= static_cast<int>((buf_ >> (len - 1)) & 1);
      const int count = h.count[len];
      if (code - count < first) {
        Drop(len);
        return h.symbol[index + (code - first)];
      }
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    return FailSymbol(kNoSuchCode);
  }

  bool Stored() {
    // Stored data starts at a byte boundary: skip the partial byte and give
    // the whole bytes already in the bit buffer back to the input.
    Drop(bitcnt_ & 7);
    in_pos_ -= static_cast<size_t>(bitcnt_ / 8);
    buf_ = 0;
    bitcnt_ = 0;
    if (in_.size() - in_pos_ < 4) return Fail(kInputEnds);
    const uint32_t len = in_[in_pos_] | in_[in_pos_ + 1] << 8;
    const uint32_t nlen = in_[in_pos_ + 2] | in_[in_pos_ + 3] << 8;
    in_pos_ += 4;
    if (len != (~nlen & 0xFFFFu)) return Fail(kBadStoredLength);
    if (in_.size() - in_pos_ < len) return Fail(kInputEnds);
    if (out_.size() - out_pos_ < len) return Fail(kOutputFull);
    for (uint32_t i = 0; i < len; ++i) out_[out_pos_ + i] = in_[in_pos_ + i];
    in_pos_ += len;
    out_pos_ += len;
    return true;
  }

  bool FixedTables() {
    uint8_t lengths[kFixedLitLenSymbols];
    int s = 0;
    for (; s < 144; ++s) lengths[s] = 8;
    for (; s < 256; ++s) lengths[s] = 9;
    for (; s < 280; ++s) lengths[s] = 7;
    for (; s < kFixedLitLenSymbols; ++s) lengths[s] = 8;
    BuildCode(lencode_, lengths, kFixedLitLenSymbols);  // complete by construction
    for (s = 0; s < kFixedDistSymbols; ++s) lengths[s] = 5;
    BuildCode(distcode_, lengths, kFixedDistSymbols);
    return true;
  }

  bool DynamicTables() {
    uint32_t nlen = 0;
    uint32_t ndist = 0;
    uint32_t ncode = 0;
    if (!Bits(5, nlen) || !Bits(5, ndist) || !Bits(4, ncode)) return false;
    nlen += 257;
    ndist += 1;
    ncode += 4;
    if (nlen > kMaxLitLenSymbols || ndist > kMaxDistSymbols) return Fail(kTooManySymbols);

    uint8_t lengths[kMaxLitLenSymbols + kMaxDistSymbols];
    for (int i = 0; i < kCodeLengthSymbols; ++i) {
      uint32_t len = 0;
      if (static_cast<uint32_t>(i) < ncode && !Bits(3, len)) return false;
      lengths[kCodeLengthOrder[i]] = static_cast<uint8_t>(len);
    }
    // The code-length code is decoded with lencode_'s storage, rebuilt below.
    switch (BuildCode(lencode_, lengths, kCodeLengthSymbols)) {
      case Fill::kComplete: break;
      case Fill::kOversubscribed: return Fail(kOversubscribed);
      default: return Fail(kIncomplete);
    }

    const uint32_t total = nlen + ndist;
    for (uint32_t index = 0; index < total;) {
      const int symbol = Decode(lencode_);
      if (symbol < 0) return false;
      if (symbol < 16) {
        lengths[index++] = static_cast<uint8_t>(symbol);
        continue;
      }
      uint8_t len = 0;
      uint32_t repeat = 0;
      if (symbol == 16) {
        if (index == 0) return Fail(kRepeatFirst);
        len = lengths[index - 1];
        if (!Bits(2, repeat)) return false;
        repeat += 3;
      } else if (symbol == 17) {
        if (!Bits(3, repeat)) return false;
        repeat += 3;
      } else {
        if (!Bits(7, repeat)) return false;
        repeat += 11;
      }
      if (repeat > total - index) return Fail(kTooManyLengths);
      while (repeat-- > 0) lengths[index++] = len;
    }
    if (lengths[kEndOfBlock] == 0) return Fail(kNoEndOfBlock);

    // As zlib: a code may leave code space unused only when it has a single
    // one-bit code, and a block of literals only may have no distance code.
    switch (BuildCode(lencode_, lengths, static_cast<int>(nlen))) {
      case Fill::kComplete:
      case Fill::kSingle: break;
      case Fill::kOversubscribed: return Fail(kOversubscribed);
      default: return Fail(kIncomplete);
    }
    switch (BuildCode(distcode_, lengths + nlen, static_cast<int>(ndist))) {
      case Fill::kComplete:
      case Fill::kSingle:
      case Fill::kEmpty: break;
      case Fill::kOversubscribed: return Fail(kOversubscribed);
      default: return Fail(kIncomplete);
    }
    return true;
  }

  bool Codes() {
    for (;;) {
      const int symbol = Decode(lencode_);
      if (symbol < 0) return false;
      if (symbol < 256) {
        if (out_pos_ == out_.size()) return Fail(kOutputFull);
        out_[out_pos_++] = static_cast<uint8_t>(symbol);
        continue;
      }
      if (symbol == kEndOfBlock) return true;
      const int length_symbol = symbol - 257;
      if (length_symbol >= 29) return Fail(kBadLengthSymbol);
      uint32_t extra = 0;
      if (!Bits(kLengthExtra[length_symbol], extra)) return false;
      const size_t len = kLengthBase[length_symbol] + extra;

      const int dist_symbol = Decode(distcode_);
      if (dist_symbol < 0) return false;
      if (dist_symbol >= kMaxDistSymbols) return Fail(kBadDistSymbol);
      if (!Bits(kDistExtra[dist_symbol], extra)) return false;
      const size_t dist = kDistBase[dist_symbol] + extra;
      if (dist > out_pos_) return Fail(kTooFarBack);
      if (len > out_.size() - out_pos_) return Fail(kOutputFull);
      // Byte by byte: source and destination overlap when dist < len.
      uint8_t* to = out_.data() + out_pos_;
      const uint8_t* from = to - dist;
      for (size_t i = 0; i < len; ++i) to[i] = from[i];
      out_pos_ += len;
    }
  }

  std::span<const uint8_t> in_;
  std::span<uint8_t> out_;
  size_t in_pos_ = 0;
  size_t out_pos_ = 0;
  uint64_t buf_ = 0;  // input bits not yet used, the next one lowest
  int bitcnt_ = 0;
  Status status_;
  LitLenCode lencode_;
  DistCode distcode_;
};

}  // namespace

Result<size_t> Inflate(std::span<const uint8_t> compressed, std::span<uint8_t> out) {
  Inflater inflater(compressed, out);
  return inflater.Run();
}

}  // namespace qmc
