// The freestanding inflater against zlib: every stream zlib's deflate makes
// decodes to its input, hand-built streams reach the limits and every error,
// and on truncated, mutated or random input the inflater agrees with zlib's
// inflate and never writes outside its output span.
#include "common/inflate.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "host/checkpoint.h"
#include "host/pack.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
const fs::path kShared = QMC_SHARED_DIR;

// Raw deflate (windowBits -15), as the flash host compresses a DATA block;
// `flushes` are (input offset, Z_SYNC_FLUSH or Z_FULL_FLUSH) before Z_FINISH.
Bytes Deflate(const Bytes& in, int level = 6, int strategy = Z_DEFAULT_STRATEGY,
              const std::vector<std::pair<size_t, int>>& flushes = {}) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, -15, 8, strategy), Z_OK);
  Bytes out;
  size_t done = 0;
  auto run = [&](size_t end, int flush) {
    z.next_in = const_cast<Bytef*>(in.data() + done);
    z.avail_in = static_cast<uInt>(end - done);
    uint8_t chunk[16384];
    int rc = Z_OK;
    do {
      z.next_out = chunk;
      z.avail_out = sizeof chunk;
      rc = deflate(&z, flush);
      EXPECT_NE(rc, Z_STREAM_ERROR);
      out.insert(out.end(), chunk, chunk + (sizeof chunk - z.avail_out));
    } while (flush == Z_FINISH ? rc != Z_STREAM_END : z.avail_out == 0);
    done = end;
  };
  for (const auto& [offset, mode] : flushes) run(offset, mode);
  run(in.size(), Z_FINISH);
  deflateEnd(&z);
  return out;
}

// zlib's raw inflate into `capacity` bytes: the output when the stream ends
// within the input and fits, nothing otherwise.
std::optional<Bytes> ZlibInflate(const Bytes& compressed, size_t capacity) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return std::nullopt;
  Bytes out(capacity + 1);  // never an empty buffer; the extra byte is not offered
  z.next_in = const_cast<Bytef*>(compressed.data());
  z.avail_in = static_cast<uInt>(compressed.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(capacity);
  const int rc = inflate(&z, Z_FINISH);
  const size_t produced = capacity - z.avail_out;
  const uInt unused = z.avail_in;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || unused != 0) return std::nullopt;
  return Bytes(out.data(), out.data() + produced);
}

// Inflate into exactly `capacity` bytes inside a guarded buffer; fails the
// test if a byte outside the span changed.
struct Inflated {
  Result<size_t> result;
  Bytes out;  // the bytes written, when ok
};

Inflated InflateGuarded(const Bytes& compressed, size_t capacity) {
  constexpr size_t kGuard = 64;
  constexpr uint8_t kCanary = 0xA5;
  Bytes buffer(capacity + 2 * kGuard, kCanary);
  // The input too sits in an exactly sized heap copy, so ASan sees overreads.
  const auto input = std::make_unique<uint8_t[]>(compressed.size() + 1);
  std::copy(compressed.begin(), compressed.end(), input.get());
  const Result<size_t> r = Inflate({input.get(), compressed.size()}, {buffer.data() + kGuard, capacity});
  for (size_t i = 0; i < kGuard; ++i) {
    EXPECT_EQ(buffer[i], kCanary) << "wrote before out at " << i;
    EXPECT_EQ(buffer[kGuard + capacity + i], kCanary) << "wrote past out at " << i;
  }
  Inflated got{r, {}};
  if (r.ok()) {
    EXPECT_LE(r.value(), capacity);
    got.out.assign(buffer.begin() + kGuard, buffer.begin() + kGuard + static_cast<std::ptrdiff_t>(r.value()));
  }
  return got;
}

void ExpectRoundTrip(const Bytes& data, const Bytes& compressed) {
  const Inflated exact = InflateGuarded(compressed, data.size());
  ASSERT_TRUE(exact.result.ok()) << exact.result.status().what;
  EXPECT_EQ(exact.result.value(), data.size());
  EXPECT_TRUE(exact.out == data);
  const Inflated roomy = InflateGuarded(compressed, data.size() + 100);
  ASSERT_TRUE(roomy.result.ok()) << roomy.result.status().what;
  EXPECT_TRUE(roomy.out == data);
}

void ExpectError(const Bytes& compressed, size_t capacity, StatusCode code, const char* what) {
  const Inflated got = InflateGuarded(compressed, capacity);
  ASSERT_FALSE(got.result.ok());
  EXPECT_EQ(got.result.status().code, code);
  EXPECT_STREQ(got.result.status().what, what);
}

Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

Bytes ReadFile(const fs::path& path, size_t max = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(in)), {});
  if (b.size() > max) b.resize(max);
  return b;
}

#define REQUIRE_SHARED(file) \
  if (!fs::exists(kShared / (file))) GTEST_SKIP() << "../shared/" << (file) << " is missing"

// stories260K packed with the default options: what the flash host sends.
const Bytes& PackedImage() {
  static const Bytes image = [] {
    host::Checkpoint c = host::LoadLlama2c(kShared / "models/stories260K.bin");
    c.tokenizer = host::LoadTokenizerFile(kShared / "models/tok512.bin", c.config.vocab_size);
    return host::PackModel(c, host::QuantOptions{}).image;
  }();
  return image;
}

// Text, a packed image, zeros, random bytes, and the text again 44 KiB
// later: literals, short and long matches, stored stretches.
Bytes MixedInput() {
  Bytes text = ReadFile(kShared / "data/kjv-valid.txt", 16384);
  Bytes data = text;
  const Bytes& image = PackedImage();
  data.insert(data.end(), image.begin(), image.begin() + std::min<size_t>(image.size(), 16384));
  data.insert(data.end(), 4096, 0);
  const Bytes noise = RandomBytes(8192, 11);
  data.insert(data.end(), noise.begin(), noise.end());
  data.insert(data.end(), text.begin(), text.end());
  return data;
}

int FirstBlockType(const Bytes& compressed) { return (compressed.at(0) >> 1) & 3; }

TEST(Inflate, EmptyAndSingleBytes) {
  ExpectRoundTrip({}, Deflate({}));
  for (int level : {0, 1, 9}) {
    ExpectRoundTrip({'x'}, Deflate({'x'}, level));
    ExpectRoundTrip({0xFF}, Deflate({0xFF}, level));
  }
}

TEST(Inflate, LongRunsOfZeros) {
  const Bytes zeros(65536, 0);
  for (int level : {1, 6, 9}) {
    const Bytes c = Deflate(zeros, level);
    EXPECT_LT(c.size(), 1024u);  // zlib coded the run as matches, as intended here
    ExpectRoundTrip(zeros, c);
  }
}

TEST(Inflate, RandomBytesInStoredBlocks) {
  const Bytes noise = RandomBytes(65536, 1);
  for (int level : {0, 6}) {
    const Bytes c = Deflate(noise, level);
    EXPECT_EQ(FirstBlockType(c), 0);  // incompressible: zlib stores it
    ExpectRoundTrip(noise, c);
  }
}

TEST(Inflate, RealText) {
  REQUIRE_SHARED("data/kjv-valid.txt");
  REQUIRE_SHARED("data/wiki.test.raw");
  for (const char* file : {"data/kjv-valid.txt", "data/wiki.test.raw"}) {
    const Bytes text = ReadFile(kShared / file, 65536);
    for (int level : {1, 6, 9}) {
      const Bytes c = Deflate(text, level);
      EXPECT_EQ(FirstBlockType(c), 2);
      ExpectRoundTrip(text, c);
    }
  }
}

TEST(Inflate, PackedImageAsFlashBlocksAndWhole) {
  REQUIRE_SHARED("models/stories260K.bin");
  const Bytes& image = PackedImage();
  ASSERT_GT(image.size(), 65536u);
  for (size_t at = 0; at < image.size(); at += 4096) {
    const Bytes block(image.begin() + static_cast<std::ptrdiff_t>(at),
                      image.begin() + static_cast<std::ptrdiff_t>(std::min(image.size(), at + 4096)));
    ExpectRoundTrip(block, Deflate(block, 9));
  }
  ExpectRoundTrip(image, Deflate(image, 6));  // many blocks, the full 32 KiB window
}

TEST(Inflate, EveryLevelAndStrategy) {
  REQUIRE_SHARED("data/kjv-valid.txt");
  REQUIRE_SHARED("models/stories260K.bin");
  const Bytes data = MixedInput();
  for (int strategy : {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED}) {
    for (int level = 0; level <= 9; ++level) {
      SCOPED_TRACE("strategy " + std::to_string(strategy) + " level " + std::to_string(level));
      const Bytes c = Deflate(data, level, strategy);
      if (level == 0) EXPECT_EQ(FirstBlockType(c), 0);
      if (level > 0 && strategy == Z_FIXED) EXPECT_EQ(FirstBlockType(c), 1);
      if (level > 0 && strategy == Z_DEFAULT_STRATEGY) EXPECT_EQ(FirstBlockType(c), 2);
      ExpectRoundTrip(data, c);
    }
  }
}

TEST(Inflate, FlushPointsMakeEmptyStoredBlocks) {
  REQUIRE_SHARED("data/kjv-valid.txt");
  const Bytes text = ReadFile(kShared / "data/kjv-valid.txt", 30000);
  const Bytes sync_marker = {0x00, 0x00, 0xFF, 0xFF};  // an empty stored block's LEN, NLEN
  for (int mode : {Z_SYNC_FLUSH, Z_FULL_FLUSH}) {
    const Bytes c = Deflate(text, 6, Z_DEFAULT_STRATEGY, {{1000, mode}, {5000, mode}, {5000, mode}, {20000, mode}});
    EXPECT_NE(std::search(c.begin(), c.end(), sync_marker.begin(), sync_marker.end()), c.end());
    ExpectRoundTrip(text, c);
  }
}

// Random bytes followed by a copy of their start: the copy is a match at
// distance exactly `distance`, up to the farthest zlib's deflate reaches.
TEST(Inflate, MatchDistancesUpToZlibsLimit) {
  for (size_t distance : {1u, 2u, 3u, 4u, 5u, 8u, 9u, 100u, 1000u, 4096u, 16384u, 32000u, 32506u}) {
    Bytes data = RandomBytes(distance, static_cast<uint32_t>(distance));
    for (size_t i = 0; i < 2000; ++i) data.push_back(data[i]);
    const Bytes c = Deflate(data, 9);
    EXPECT_LT(c.size(), data.size() - 1500) << "zlib did not find the match at distance " << distance;
    ExpectRoundTrip(data, c);
  }
}

TEST(Inflate, EverySizeUpTo64KiB) {
  REQUIRE_SHARED("data/wiki.test.raw");
  const Bytes text = ReadFile(kShared / "data/wiki.test.raw", 65536);
  const Bytes noise = RandomBytes(65536, 3);
  std::vector<size_t> sizes;
  for (size_t n = 1; n <= 600; ++n) sizes.push_back(n);
  for (size_t p = 1024; p <= 65536; p *= 2) sizes.insert(sizes.end(), {p - 1, p, p + 1});
  for (size_t n : sizes) {
    for (const Bytes* source : {&text, &noise}) {
      const Bytes data(source->begin(), source->begin() + static_cast<std::ptrdiff_t>(std::min(n, source->size())));
      ExpectRoundTrip(data, Deflate(data, 6));
    }
  }
}

// Streams written bit by bit, for what zlib's deflate never emits.
class BitWriter {
 public:
  void Bits(uint32_t value, int n) {  // least significant bit first
    for (int i = 0; i < n; ++i) Bit((value >> i) & 1);
  }
  void Code(uint32_t code, int len) {  // Huffman codes go most significant bit first
    for (int i = len - 1; i >= 0; --i) Bit((code >> i) & 1);
  }
  void Byte(uint8_t b) {  // a whole byte at the next byte boundary
    used_ = 0;
    bytes_.push_back(b);
  }
  Bytes bytes() const { return bytes_; }

 private:
  void Bit(uint32_t bit) {
    if (used_ == 0) bytes_.push_back(0);
    bytes_.back() = static_cast<uint8_t>(bytes_.back() | bit << used_);
    used_ = (used_ + 1) % 8;
  }
  Bytes bytes_;
  int used_ = 0;
};

// RFC 1951 §3.2.2: the canonical code of each symbol from the code lengths.
std::vector<uint32_t> CanonicalCodes(const std::vector<int>& lengths) {
  int count[16] = {};
  for (int len : lengths) ++count[len];
  count[0] = 0;
  uint32_t next[16] = {};
  uint32_t code = 0;
  for (int bits = 1; bits < 16; ++bits) {
    code = (code + static_cast<uint32_t>(count[bits - 1])) << 1;
    next[bits] = code;
  }
  std::vector<uint32_t> codes(lengths.size());
  for (size_t s = 0; s < lengths.size(); ++s) {
    if (lengths[s] != 0) codes[s] = next[lengths[s]]++;
  }
  return codes;
}

// A Huffman code for a hand-built block: lengths and their canonical codes.
struct Code {
  explicit Code(std::vector<int> l) : lengths(std::move(l)), codes(CanonicalCodes(lengths)) {}
  void Put(BitWriter& w, int symbol) const { w.Code(codes.at(symbol), lengths.at(symbol)); }
  std::vector<int> lengths;
  std::vector<uint32_t> codes;
};

const Code& FixedLitLen() {
  static const Code code = [] {
    std::vector<int> l(288, 8);
    std::fill(l.begin() + 144, l.begin() + 256, 9);
    std::fill(l.begin() + 256, l.begin() + 280, 7);
    return Code(l);
  }();
  return code;
}
const Code& FixedDist() {
  static const Code code(std::vector<int>(32, 5));
  return code;
}

// A length/distance pair as symbols and extra bits (RFC 1951 §3.2.5).
struct Match {
  int length_symbol;
  int length_extra_bits;
  uint32_t length_extra;
  int distance_symbol;
  int distance_extra_bits;
  uint32_t distance_extra;
};
constexpr Match kLength3Distance1 = {257, 0, 0, 0, 0, 0};
constexpr Match kLength3Distance2 = {257, 0, 0, 1, 0, 0};
constexpr Match kLength258Distance32768 = {285, 0, 0, 29, 13, 8191};  // 24577 + 8191

void PutMatch(BitWriter& w, const Code& litlen, const Code& dist, const Match& m) {
  litlen.Put(w, m.length_symbol);
  w.Bits(m.length_extra, m.length_extra_bits);
  dist.Put(w, m.distance_symbol);
  w.Bits(m.distance_extra, m.distance_extra_bits);
}

// The code-length code of the hand-built dynamic blocks: symbols 0..12 take
// four bits, 13..18 five (complete: 13/16 + 6/32 = 1).
const Code& CodeLengthCode() {
  static const Code code = [] {
    std::vector<int> l(19, 4);
    std::fill(l.begin() + 13, l.end(), 5);
    return Code(l);
  }();
  return code;
}

// A dynamic block header: HLIT, HDIST, all 19 code-length code lengths, then
// `items`, code-length symbols with their extra bits ({symbol, bits, value}).
struct LengthItem {
  int symbol;
  int extra_bits = 0;
  uint32_t extra = 0;
};
void PutDynamicHeader(BitWriter& w, bool final, int nlen, int ndist, const std::vector<int>& code_length_lengths,
                      const std::vector<LengthItem>& items) {
  static constexpr int kOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  w.Bits(final ? 1 : 0, 1);
  w.Bits(2, 2);
  w.Bits(static_cast<uint32_t>(nlen - 257), 5);
  w.Bits(static_cast<uint32_t>(ndist - 1), 5);
  w.Bits(19 - 4, 4);
  for (int s : kOrder) w.Bits(static_cast<uint32_t>(code_length_lengths[s]), 3);
  const Code cl(code_length_lengths);
  for (const LengthItem& item : items) {
    cl.Put(w, item.symbol);
    w.Bits(item.extra, item.extra_bits);
  }
}
// The same with the litlen and distance code lengths sent one by one.
void PutDynamicHeader(BitWriter& w, bool final, const std::vector<int>& litlen, const std::vector<int>& dist) {
  std::vector<LengthItem> items;
  for (int len : litlen) items.push_back({len});
  for (int len : dist) items.push_back({len});
  PutDynamicHeader(w, final, static_cast<int>(litlen.size()), static_cast<int>(dist.size()),
                   CodeLengthCode().lengths, items);
}

// Lengths for a literal/length code with `coded` symbols at the given lengths.
std::vector<int> Lengths(int n, std::initializer_list<std::pair<int, int>> coded) {
  std::vector<int> l(static_cast<size_t>(n), 0);
  for (const auto& [symbol, len] : coded) l.at(static_cast<size_t>(symbol)) = len;
  return l;
}

// Both decoders must reject a hand-built invalid stream.
void ExpectInvalid(const Bytes& stream, size_t capacity, StatusCode code, const char* what) {
  EXPECT_FALSE(ZlibInflate(stream, capacity).has_value()) << "zlib accepts the stream meant to be invalid";
  ExpectError(stream, capacity, code, what);
}

TEST(InflateHandBuilt, LongestMatchAtFarthestDistance) {
  BitWriter w;
  w.Bits(1, 1);
  w.Bits(1, 2);  // final, fixed
  Bytes expected;
  for (uint32_t i = 0; i < 32768; ++i) {
    const auto b = static_cast<uint8_t>((i * 7) ^ (i >> 8));
    expected.push_back(b);
    FixedLitLen().Put(w, b);
  }
  for (int k = 0; k < 2; ++k) {
    PutMatch(w, FixedLitLen(), FixedDist(), kLength258Distance32768);
    for (int i = 0; i < 258; ++i) expected.push_back(expected[expected.size() - 32768]);
  }
  FixedLitLen().Put(w, 256);
  const Bytes stream = w.bytes();
  ASSERT_EQ(ZlibInflate(stream, expected.size()), expected);
  ExpectRoundTrip(expected, stream);
}

TEST(InflateHandBuilt, OverlappingMatchRepeatsTheLastByte) {
  BitWriter w;
  w.Bits(1, 1);
  w.Bits(1, 2);
  FixedLitLen().Put(w, 'a');
  FixedLitLen().Put(w, 'b');
  PutMatch(w, FixedLitLen(), FixedDist(), kLength3Distance1);
  PutMatch(w, FixedLitLen(), FixedDist(), kLength3Distance2);
  FixedLitLen().Put(w, 256);
  const Bytes expected = {'a', 'b', 'b', 'b', 'b', 'b', 'b', 'b'};
  ASSERT_EQ(ZlibInflate(w.bytes(), 8), expected);
  ExpectRoundTrip(expected, w.bytes());
}

TEST(InflateHandBuilt, InvalidBlockType) {
  BitWriter w;
  w.Bits(1, 1);
  w.Bits(3, 2);
  w.Bits(0, 13);
  ExpectInvalid(w.bytes(), 100, StatusCode::kInvalidValue, "inflate: invalid block type");
}

TEST(InflateHandBuilt, StoredLengthMustMatchItsComplement) {
  const Bytes good = {0x01, 0x03, 0x00, 0xFC, 0xFF, 'a', 'b', 'c'};
  ASSERT_EQ(ZlibInflate(good, 3), (Bytes{'a', 'b', 'c'}));
  ExpectRoundTrip({'a', 'b', 'c'}, good);
  const Bytes bad = {0x01, 0x03, 0x00, 0xFC, 0xFE, 'a', 'b', 'c'};
  ExpectInvalid(bad, 100, StatusCode::kInvalidValue, "inflate: stored block length does not match its complement");
}

TEST(InflateHandBuilt, DistanceTooFarBack) {
  BitWriter w;
  w.Bits(1, 1);
  w.Bits(1, 2);
  FixedLitLen().Put(w, 'a');
  PutMatch(w, FixedLitLen(), FixedDist(), kLength3Distance2);
  FixedLitLen().Put(w, 256);
  ExpectInvalid(w.bytes(), 100, StatusCode::kOutOfBounds, "inflate: distance too far back");
}

TEST(InflateHandBuilt, FixedCodeSymbolsDeflateDoesNotDefine) {
  for (int symbol : {286, 287}) {
    BitWriter w;
    w.Bits(1, 1);
    w.Bits(1, 2);
    FixedLitLen().Put(w, 'a');
    FixedLitLen().Put(w, symbol);
    w.Bits(0, 16);
    ExpectInvalid(w.bytes(), 100, StatusCode::kInvalidValue, "inflate: invalid length symbol");
  }
  for (int symbol : {30, 31}) {
    BitWriter w;
    w.Bits(1, 1);
    w.Bits(1, 2);
    FixedLitLen().Put(w, 'a');
    FixedLitLen().Put(w, 257);
    FixedDist().Put(w, symbol);
    w.Bits(0, 16);
    ExpectInvalid(w.bytes(), 100, StatusCode::kInvalidValue, "inflate: invalid distance symbol");
  }
}

TEST(InflateHandBuilt, DynamicBlockWithSingleCodes) {
  // A one-bit distance code alone; then a block whose only code is
  // end-of-block and whose distance code is empty.
  const Code litlen(Lengths(258, {{'a', 1}, {256, 2}, {257, 2}}));
  const Code dist(Lengths(1, {{0, 1}}));
  BitWriter w;
  PutDynamicHeader(w, false, litlen.lengths, dist.lengths);
  litlen.Put(w, 'a');
  litlen.Put(w, 'a');
  litlen.Put(w, 257);  // length 3
  dist.Put(w, 0);      // distance 1
  litlen.Put(w, 256);
  const Code only_end(Lengths(257, {{256, 1}}));
  PutDynamicHeader(w, true, only_end.lengths, {0});
  only_end.Put(w, 256);
  const Bytes expected(5, 'a');
  ASSERT_EQ(ZlibInflate(w.bytes(), 5), expected);
  ExpectRoundTrip(expected, w.bytes());
}

TEST(InflateHandBuilt, BitPatternWithNoCode) {
  const Code only_end(Lengths(257, {{256, 1}}));  // the code is "0"; "1" means nothing
  BitWriter w;
  PutDynamicHeader(w, true, only_end.lengths, {0});
  w.Code(1, 1);
  w.Bits(0, 16);
  ExpectInvalid(w.bytes(), 100, StatusCode::kInvalidValue, "inflate: bit pattern matches no Huffman code");
}

TEST(InflateHandBuilt, BadDynamicHeaders) {
  const std::vector<int> two_literals = Lengths(257, {{'a', 1}, {256, 1}});
  const std::vector<int> one_distance = {1};
  auto check = [](BitWriter& w, const char* what) {
    SCOPED_TRACE(what);
    w.Bits(0, 32);  // the header fails before these bits are needed
    ExpectInvalid(w.bytes(), 100, StatusCode::kInvalidValue, what);
  };
  {
    BitWriter w;  // HLIT 30 declares 287 literal/length codes
    PutDynamicHeader(w, true, 287, 1, CodeLengthCode().lengths, {});
    check(w, "inflate: too many length or distance symbols");
  }
  {
    BitWriter w;  // HDIST 30 declares 31 distance codes
    PutDynamicHeader(w, true, 257, 31, CodeLengthCode().lengths, {});
    check(w, "inflate: too many length or distance symbols");
  }
  {
    BitWriter w;  // three one-bit codes
    std::vector<int> cl(19, 0);
    cl[0] = cl[1] = cl[2] = 1;
    PutDynamicHeader(w, true, 257, 1, cl, {});
    check(w, "inflate: oversubscribed Huffman code");
  }
  {
    BitWriter w;  // one two-bit code leaves 3/4 of the code space unused
    std::vector<int> cl(19, 0);
    cl[1] = 2;
    PutDynamicHeader(w, true, 257, 1, cl, {});
    check(w, "inflate: incomplete Huffman code");
  }
  {
    BitWriter w;
    PutDynamicHeader(w, true, Lengths(257, {{'a', 1}, {'b', 1}, {256, 1}}), one_distance);
    check(w, "inflate: oversubscribed Huffman code");
  }
  {
    BitWriter w;
    PutDynamicHeader(w, true, Lengths(257, {{'a', 2}, {256, 2}}), one_distance);
    check(w, "inflate: incomplete Huffman code");
  }
  {
    BitWriter w;
    PutDynamicHeader(w, true, two_literals, {2, 2});
    check(w, "inflate: incomplete Huffman code");
  }
  {
    BitWriter w;
    PutDynamicHeader(w, true, Lengths(257, {{'a', 1}, {'b', 1}}), one_distance);
    check(w, "inflate: no end-of-block code");
  }
  {
    BitWriter w;  // "repeat the previous length" as the very first length
    PutDynamicHeader(w, true, 257, 1, CodeLengthCode().lengths, {{16, 2, 0}});
    check(w, "inflate: code length repeat with no previous length");
  }
  {
    BitWriter w;  // 2 x 138 zeros overrun 257 + 1 lengths
    PutDynamicHeader(w, true, 257, 1, CodeLengthCode().lengths, {{18, 7, 127}, {18, 7, 127}});
    check(w, "inflate: code lengths exceed the declared count");
  }
}

TEST(Inflate, TrailingBytesAreRejected) {
  const Bytes data = {'h', 'e', 'l', 'l', 'o'};
  Bytes c = Deflate(data);
  ExpectRoundTrip(data, c);
  for (uint8_t extra : {0x00, 0x5A}) {
    Bytes padded = c;
    padded.push_back(extra);
    ExpectError(padded, 100, StatusCode::kInvalidValue, "inflate: trailing bytes after the final block");
  }
}

// Streams of every kind, a few KiB each, for the exhaustive error tests.
std::vector<Bytes> SampleStreams() {
  const Bytes text = ReadFile(kShared / "data/kjv-valid.txt", 4096);
  return {
      Deflate(text, 9),
      Deflate(text, 6, Z_FIXED),
      Deflate(RandomBytes(3000, 5), 0),
      Deflate(text, 6, Z_DEFAULT_STRATEGY, {{1000, Z_SYNC_FLUSH}, {1000, Z_FULL_FLUSH}}),
      Deflate(Bytes(4096, 7), 9),
  };
}

TEST(InflateErrors, EveryTruncationReportsInputEndsEarly) {
  REQUIRE_SHARED("data/kjv-valid.txt");
  for (const Bytes& c : SampleStreams()) {
    const std::optional<Bytes> full = ZlibInflate(c, 1 << 16);
    ASSERT_TRUE(full.has_value());
    for (size_t cut = 0; cut < c.size(); ++cut) {
      SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(c.size()));
      ExpectError(Bytes(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(cut)), full->size(), StatusCode::kTruncated,
                  "inflate: input ends early");
    }
  }
}

TEST(InflateErrors, OutputOneByteShort) {
  REQUIRE_SHARED("data/kjv-valid.txt");
  for (const Bytes& c : SampleStreams()) {
    const std::optional<Bytes> full = ZlibInflate(c, 1 << 16);
    ASSERT_TRUE(full.has_value());
    ExpectRoundTrip(*full, c);
    ExpectError(c, full->size() - 1, StatusCode::kTooLarge, "inflate: output does not fit");
    ExpectError(c, 0, StatusCode::kTooLarge, "inflate: output does not fit");
  }
}

// Both decoders accept the same streams and produce the same bytes; the
// guard in InflateGuarded checks nothing is written outside `out`.
void ExpectAgreesWithZlib(const Bytes& stream, size_t capacity, int& accepted) {
  const Inflated ours = InflateGuarded(stream, capacity);
  const std::optional<Bytes> theirs = ZlibInflate(stream, capacity);
  ASSERT_EQ(ours.result.ok(), theirs.has_value()) << (ours.result.ok() ? "" : ours.result.status().what);
  if (theirs) {
    ASSERT_TRUE(ours.out == *theirs);
    ++accepted;
  }
}

TEST(InflateFuzz, RandomBytes) {
  std::mt19937 rng(2024);
  int accepted = 0;
  for (int i = 0; i < 30000; ++i) {
    Bytes input(rng() % 64);
    for (auto& b : input) b = static_cast<uint8_t>(rng());
    ExpectAgreesWithZlib(input, rng() % 2 ? 4096 : rng() % 64, accepted);
    if (HasFatalFailure()) return;
  }
  std::printf("random inputs zlib and the inflater both accept: %d of 30000\n", accepted);
}

TEST(InflateFuzz, MutatedStreams) {
  REQUIRE_SHARED("data/kjv-valid.txt");
  std::mt19937 rng(99);
  int accepted = 0;
  int tries = 0;
  for (const Bytes& original : SampleStreams()) {
    const size_t capacity = ZlibInflate(original, 1 << 16)->size();
    for (int i = 0; i < 6000; ++i, ++tries) {
      Bytes c = original;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t at = rng() % c.size();
        if (rng() % 2) {
          c[at] = static_cast<uint8_t>(c[at] ^ (1u << (rng() % 8)));
        } else {
          c[at] = static_cast<uint8_t>(rng());
        }
      }
      ExpectAgreesWithZlib(c, capacity, accepted);
      if (HasFatalFailure()) return;
    }
  }
  std::printf("mutated streams zlib and the inflater both accept: %d of %d\n", accepted, tries);
}

}  // namespace
}  // namespace qmc
