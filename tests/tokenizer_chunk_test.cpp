// Encoding a text in chunks (Tokenizer::BreakBefore, EncodeContinuation,
// host::EncodeText): every shared tokenizer gives the tokens of one whole
// encode, on real texts cut into many small chunks and at every break of
// random texts built from the characters breaks are fragile around; a
// vocabulary that merges across '\n' allows no break; the workspace does not
// grow with the text.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/tokenizer.h"
#include "host/eval.h"
#include "host/checkpoint.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
const fs::path kShared = QMC_SHARED_DIR;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct Source {
  std::string name;
  std::vector<uint8_t> section;
  uint32_t vocab_size;
};

// The llama2.c tokenizer files and the paper models' tokenizer.json, each
// loaded once (models/kjv6M-hf carries no tokenizer.json).
const std::vector<Source>& Sources() {
  static const std::vector<Source> sources = [] {
    std::vector<Source> s;
    for (const auto& [file, vocab] : {std::pair<const char*, uint32_t>{"tok512.bin", 512},
                                      {"kjv_tok2048.bin", 2048},
                                      {"tokenizer.bin", 32000}}) {
      const std::string bytes = ReadText(kShared / "models" / file);
      s.push_back({file, {bytes.begin(), bytes.end()}, vocab});
    }
    for (const auto& [dir, vocab] : {std::pair<const char*, uint32_t>{"llama-3.2-3b", 128256},
                                     {"qwen2.5-1.5b-instruct", 151936},
                                     {"phi-1_5", 51200},
                                     {"hymba-1.5b-base", 32001}}) {
      s.push_back({dir, host::LoadTokenizerFile(kShared / "models/paper" / dir / "tokenizer.json", vocab), vocab});
    }
    return s;
  }();
  return sources;
}

class ChunkTest : public ::testing::TestWithParam<size_t> {
 protected:
  const Source& source() const { return Sources()[GetParam()]; }
};

// Whole texts: one chunk against chunks of at most about 2 KiB.
TEST_P(ChunkTest, RealTextsChunkedGiveTheWholeTokens) {
  const Source& s = source();
  const std::string wiki = ReadText(kShared / "data/wiki.test.raw");
  ASSERT_GT(wiki.size(), 200000u);
  for (const std::string& text : {ReadText(kShared / "data/kjv-valid.txt"), wiki.substr(0, 200000)}) {
    ASSERT_GT(text.size(), 100000u);
    ASSERT_EQ(host::EncodeChunkEnds(s.section, s.vocab_size, text, SIZE_MAX).size(), 1u);
    const std::vector<uint32_t> whole = host::EncodeText(s.section, s.vocab_size, text, SIZE_MAX);
    const std::vector<size_t> ends = host::EncodeChunkEnds(s.section, s.vocab_size, text, 2048);
    EXPECT_EQ(host::EncodeText(s.section, s.vocab_size, text, 2048), whole) << s.name;
    // Every line break before an ASCII byte is a break for these tokenizers
    // (none merges across one), so chunks stay near 2 KiB. For NFC
    // (Qwen2), a line NFC changes is checked normalized.
    EXPECT_GT(ends.size(), text.size() / 4096) << s.name;
    size_t longest = 0;
    for (size_t i = 0, start = 0; i < ends.size(); start = ends[i++]) longest = std::max(longest, ends[i] - start);
    EXPECT_LE(longest, 2048u + 8192u) << s.name;  // the longest line of these texts is under 8 KiB
  }
}

// Random texts of characters around which pre-tokenizers, NFC and added
// tokens behave differently: at every break any limit yields, the two
// encodes give the whole one.
TEST_P(ChunkTest, EveryBreakOfRandomTextsGivesTheWholeTokens) {
  const Source& s = source();
  static const char* const kPieces[] = {" ",  "  ", "\n", "\n", "\n",  "\r\n", "\t",  "a",   "Bc", "the", "1",
                                        "23", ".",  "'s", "'",  "\xC3\xA9", "e\xCC\x81", "\xE4\xB8\xAD",
                                        "<|endoftext|>", "<s>", "\xE2\x80\x80", "\xCC\x81", "!?", "\xFF"};
  constexpr size_t kMaxText = 96;
  std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(s.section, s.vocab_size, kMaxText + 16));
  Tokenizer tokenizer;
  ASSERT_TRUE(tokenizer.Init(s.section, s.vocab_size, workspace, kMaxText + 16).ok());
  const auto encode = [&](std::string_view text, bool continuation) {
    std::vector<uint32_t> tokens(tokenizer.MaxTokens(text.size()));
    const Result<uint32_t> n = continuation ? tokenizer.EncodeContinuation(text, false, tokens)
                                            : tokenizer.Encode(text, false, false, tokens);
    EXPECT_TRUE(n.ok()) << n.status().what;
    tokens.resize(n.ok() ? n.value() : 0);
    return tokens;
  };
  std::mt19937 rng(7);
  size_t breaks = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    while (text.size() < kMaxText - 16) text += kPieces[rng() % std::size(kPieces)];
    const std::vector<uint32_t> whole = encode(text, false);
    size_t previous = 0;
    for (size_t limit = 1; limit <= text.size(); ++limit) {
      const size_t p = tokenizer.BreakBefore(text, limit);
      ASSERT_LE(p, limit);
      ASSERT_LT(p, text.size());
      if (p == 0 || p == previous) continue;
      ASSERT_EQ(text[p - 1], '\n');
      previous = p;
      ++breaks;
      std::vector<uint32_t> chunked = encode(std::string_view(text).substr(0, p), false);
      const std::vector<uint32_t> rest = encode(std::string_view(text).substr(p), true);
      chunked.insert(chunked.end(), rest.begin(), rest.end());
      ASSERT_EQ(chunked, whole) << s.name << " breaking at " << p << " of " << ::testing::PrintToString(text);
    }
  }
  EXPECT_GT(breaks, 300u) << s.name;
}

// The workspace EncodeText allocates is the same for a text four times as long.
TEST_P(ChunkTest, WorkspaceDoesNotGrowWithTheText) {
  const Source& s = source();
  const std::string kjv = ReadText(kShared / "data/kjv-valid.txt");
  const size_t one = host::EncodeWorkspaceBytes(s.section, s.vocab_size, kjv, 16384);
  EXPECT_EQ(host::EncodeWorkspaceBytes(s.section, s.vocab_size, kjv + kjv + kjv + kjv, 16384), one) << s.name;
  EXPECT_LT(one * 4, Tokenizer::WorkspaceBytes(s.section, s.vocab_size, kjv.size())) << s.name;
}

INSTANTIATE_TEST_SUITE_P(SharedTokenizers, ChunkTest, ::testing::Range<size_t>(0, 7),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           std::string name = Sources()[info.param].name;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// A llama2.c tokenizer.bin: <unk>, <s>, </s>, the 256 byte fallbacks, then `pieces`.
std::vector<uint8_t> Llama2cVocab(const std::vector<std::string>& pieces) {
  std::vector<std::string> all = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    all.push_back(hex);
  }
  all.insert(all.end(), pieces.begin(), pieces.end());
  std::vector<uint8_t> bytes(4);
  const uint32_t max_length = 16;
  std::memcpy(bytes.data(), &max_length, 4);
  for (size_t i = 0; i < all.size(); ++i) {
    const float score = -static_cast<float>(i);
    const auto length = static_cast<uint32_t>(all[i].size());
    bytes.insert(bytes.end(), reinterpret_cast<const uint8_t*>(&score), reinterpret_cast<const uint8_t*>(&score) + 4);
    bytes.insert(bytes.end(), reinterpret_cast<const uint8_t*>(&length), reinterpret_cast<const uint8_t*>(&length) + 4);
    bytes.insert(bytes.end(), all[i].begin(), all[i].end());
  }
  return bytes;
}

TEST(ChunkVocab, ATokenMergingAcrossANewlineAllowsNoBreak) {
  const std::string text = "ab\nab\nb a\nba";
  for (const bool merges_newline : {false, true}) {
    std::vector<std::string> pieces = {" ", "a", "b", "\n", "ab", " ab"};
    if (merges_newline) pieces.push_back("\na");
    const std::vector<uint8_t> bytes = Llama2cVocab(pieces);
    const auto vocab = static_cast<uint32_t>(259 + pieces.size());
    std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(bytes, vocab, text.size()));
    Tokenizer tokenizer;
    ASSERT_TRUE(tokenizer.Init(bytes, vocab, workspace, text.size()).ok());
    EXPECT_EQ(tokenizer.BreakBefore(text, text.size()), merges_newline ? 0u : 10u);
    EXPECT_EQ(host::EncodeChunkEnds(bytes, vocab, text, 4).size(), merges_newline ? 1u : 4u);
    EXPECT_EQ(host::EncodeText(bytes, vocab, text, 4), host::EncodeText(bytes, vocab, text, SIZE_MAX));
  }
}

}  // namespace
}  // namespace qmc
