#include "common/tokenizer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace qmc {
namespace {

namespace fs = std::filesystem;
const fs::path kShared = QMC_SHARED_DIR;

std::vector<uint8_t> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string ReadText(const fs::path& path) {
  const std::vector<uint8_t> bytes = ReadFile(path);
  return {bytes.begin(), bytes.end()};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// llama2.c run.c's encode(), transcribed plainly (quadratic merge loop, C
// strings), from the same tokenizer bytes: the definition the fast encoder
// is held to. A repeated string resolves to its lowest id.
class ReferenceTokenizer {
 public:
  ReferenceTokenizer(const std::vector<uint8_t>& bytes, uint32_t vocab_size) {
    size_t pos = 4;
    for (uint32_t i = 0; i < vocab_size; ++i) {
      float score;
      int32_t length;
      std::memcpy(&score, &bytes[pos], 4);
      std::memcpy(&length, &bytes[pos + 4], 4);
      const std::string piece(reinterpret_cast<const char*>(&bytes[pos + 8]), static_cast<size_t>(length));
      vocab_.push_back(piece.c_str());  // C string: up to the first NUL
      scores_.push_back(score);
      pos += 8 + static_cast<size_t>(length);
    }
    for (uint32_t i = 0; i < vocab_size; ++i) index_.emplace(vocab_[i], static_cast<int>(i));
  }

  std::vector<uint32_t> Encode(const std::string& text, bool bos, bool eos) const {
    std::vector<int> tokens;
    if (bos) tokens.push_back(1);
    if (!text.empty()) tokens.push_back(Lookup(" "));
    std::string buffer;
    for (size_t c = 0; c < text.size(); ++c) {
      if ((text[c] & 0xC0) != 0x80) buffer.clear();
      buffer += text[c];
      if (c + 1 < text.size() && (text[c + 1] & 0xC0) == 0x80 && buffer.size() < 4) continue;
      const int id = Lookup(buffer);
      if (id != -1) {
        tokens.push_back(id);
      } else {
        for (const char byte : buffer) tokens.push_back(static_cast<unsigned char>(byte) + 3);
      }
      buffer.clear();
    }
    while (true) {
      float best_score = -1e10;
      int best_id = -1, best_idx = -1;
      for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        const int id = Lookup(vocab_[tokens[i]] + vocab_[tokens[i + 1]]);
        if (id != -1 && scores_[id] > best_score) {
          best_score = scores_[id];
          best_id = id;
          best_idx = static_cast<int>(i);
        }
      }
      if (best_idx == -1) break;
      tokens[best_idx] = best_id;
      tokens.erase(tokens.begin() + best_idx + 1);
    }
    if (eos) tokens.push_back(2);
    return {tokens.begin(), tokens.end()};
  }

 private:
  int Lookup(const std::string& s) const {
    const auto it = index_.find(s);
    return it == index_.end() ? -1 : it->second;
  }

  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
};

// The fast tokenizer with its own workspace.
struct FastTokenizer {
  FastTokenizer(const std::vector<uint8_t>& bytes, uint32_t vocab_size, size_t max_text)
      : workspace(Tokenizer::WorkspaceBytes(bytes, vocab_size, max_text)) {
    const Status status = tokenizer.Init(bytes, vocab_size, workspace, max_text);
    EXPECT_TRUE(status.ok()) << status.what;
  }
  std::vector<uint32_t> Encode(const std::string& text, bool bos, bool eos) {
    std::vector<uint32_t> tokens(tokenizer.MaxTokens(text.size()));
    const Result<uint32_t> n = tokenizer.Encode(text, bos, eos, tokens);
    EXPECT_TRUE(n.ok()) << n.status().what;
    tokens.resize(n.ok() ? n.value() : 0);
    return tokens;
  }
  std::string Decode(const std::vector<uint32_t>& tokens) const {
    std::string text;
    for (size_t i = 1; i < tokens.size(); ++i) text += tokenizer.Decode(tokens[i - 1], tokens[i]);
    return text;
  }

  std::vector<uint8_t> workspace;
  Tokenizer tokenizer;
};

struct Vocab {
  std::string name;
  std::vector<uint8_t> bytes;
  uint32_t size;
};

std::vector<uint8_t> Serialize(const std::vector<std::pair<float, std::string>>& entries) {
  std::vector<uint8_t> out(4);
  int32_t max_length = 0;
  for (const auto& [score, piece] : entries) {
    max_length = std::max(max_length, static_cast<int32_t>(piece.size()));
    const auto length = static_cast<int32_t>(piece.size());
    out.insert(out.end(), reinterpret_cast<const uint8_t*>(&score), reinterpret_cast<const uint8_t*>(&score) + 4);
    out.insert(out.end(), reinterpret_cast<const uint8_t*>(&length), reinterpret_cast<const uint8_t*>(&length) + 4);
    out.insert(out.end(), piece.begin(), piece.end());
  }
  std::memcpy(out.data(), &max_length, 4);
  return out;
}

// <unk>, <s>, </s>, the 256 byte tokens, then `pieces`: the llama2.c layout.
std::vector<std::pair<float, std::string>> WithSpecialTokens(const std::vector<std::pair<float, std::string>>& pieces) {
  std::vector<std::pair<float, std::string>> entries = {{0.0f, "<unk>"}, {0.0f, "\n<s>\n"}, {0.0f, "\n</s>\n"}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    entries.push_back({0.0f, name});
  }
  entries.insert(entries.end(), pieces.begin(), pieces.end());
  return entries;
}

// Every string over {a, b, c, space} up to length 3 with scores from a tiny
// set, so equal scores (the leftmost rule) decide most merges; plus a merge
// below run.c's -1e10 floor and a repeated string.
Vocab TieHeavyVocab() {
  std::vector<std::pair<float, std::string>> pieces;
  std::mt19937 rng(7);
  std::vector<std::string> level = {""};
  for (int length = 1; length <= 3; ++length) {
    std::vector<std::string> next;
    for (const std::string& s : level) {
      for (char c : std::string("abc ")) next.push_back(s + c);
    }
    for (const std::string& s : next) {
      if (s != "cc") pieces.push_back({-static_cast<float>(rng() % 3), s});
    }
    level = next;
  }
  pieces.push_back({-2e10f, "cc"});
  pieces.push_back({5.0f, "ab"});  // a repeat: "ab" keeps its first id and score
  const auto entries = WithSpecialTokens(pieces);
  return {"tie-heavy", Serialize(entries), static_cast<uint32_t>(entries.size())};
}

std::vector<Vocab> SharedVocabs() {
  std::vector<Vocab> vocabs;
  for (const auto& [file, size] : {std::pair<const char*, uint32_t>{"tok512.bin", 512}, {"kjv_tok2048.bin", 2048}}) {
    const fs::path path = kShared / "models" / file;
    if (fs::exists(path)) vocabs.push_back({file, ReadFile(path), size});
  }
  return vocabs;
}

std::string RandomAscii(std::mt19937& rng, size_t length) {
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ.,;:!?'\"-\n\t0123456789  the and ";
  std::string s;
  for (size_t i = 0; i < length; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}

void AppendUtf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Mostly ASCII with 2-, 3- and 4-byte characters, and malformed bytes
// (stray continuations, runs longer than a codepoint, truncated sequences).
std::string RandomUtf8(std::mt19937& rng, size_t length) {
  std::string s;
  while (s.size() < length) {
    switch (rng() % 8) {
      case 0: AppendUtf8(s, 0x80 + rng() % 0x780); break;
      case 1: AppendUtf8(s, 0x800 + rng() % 0xF000); break;
      case 2: AppendUtf8(s, 0x10000 + rng() % 0x10000); break;
      case 3: s += static_cast<char>(0x80 + rng() % 0x40); break;
      case 4: s += "\xE2\x82"; break;
      case 5: s += "\xF0\x9F\x98\x80\x80\x80"; break;
      default: s += RandomAscii(rng, 1 + rng() % 6);
    }
  }
  return s;
}

std::vector<std::string> VariedTexts() {
  std::vector<std::string> texts = {"", " ", "  ", "a", "\n", "Hello, world!", "Once upon a time, there was a little girl.",
                                    "In the beginning God created the heaven and the earth.",
                                    "naïve café — 日本語 テキスト 🙂👍🏽", "zzzzqqqq xylophone QQQ", "\xFF\xFE\x80",
                                    "<0x41> <s> </s> <unk>", "   leading and trailing   "};
  std::mt19937 rng(2024);
  for (int i = 0; i < 150; ++i) texts.push_back(RandomAscii(rng, rng() % 300));
  for (int i = 0; i < 150; ++i) texts.push_back(RandomUtf8(rng, rng() % 200));
  return texts;
}

std::vector<std::string> CorpusLines() {
  std::vector<std::string> lines;
  for (const char* file : {"kjv-valid.txt", "wiki.test.raw"}) {
    const fs::path path = kShared / "data" / file;
    if (!fs::exists(path)) continue;
    const std::vector<std::string> all = Lines(ReadText(path));
    const size_t stride = std::string(file) == "wiki.test.raw" ? 9 : 2;  // bounds the quadratic reference
    for (size_t i = 0; i < all.size(); i += stride) lines.push_back(all[i]);
  }
  return lines;
}

void ExpectSameTokens(const Vocab& vocab, const std::vector<std::string>& texts) {
  const ReferenceTokenizer reference(vocab.bytes, vocab.size);
  size_t longest = 0;
  for (const std::string& t : texts) longest = std::max(longest, t.size());
  FastTokenizer fast(vocab.bytes, vocab.size, longest);
  for (const std::string& text : texts) {
    for (const bool bos : {true, false}) {
      const bool eos = !bos;
      ASSERT_EQ(fast.Encode(text, bos, eos), reference.Encode(text, bos, eos))
          << vocab.name << " text \"" << text << "\" bos " << bos;
    }
  }
}

TEST(Tokenizer, MatchesRunCEncodeOnVariedTexts) {
  const std::vector<Vocab> vocabs = SharedVocabs();
  if (vocabs.empty()) GTEST_SKIP() << "../shared/models is missing";
  for (const Vocab& vocab : vocabs) ExpectSameTokens(vocab, VariedTexts());
}

TEST(Tokenizer, MatchesRunCEncodeOnCorpusLines) {
  const std::vector<Vocab> vocabs = SharedVocabs();
  const std::vector<std::string> lines = CorpusLines();
  if (vocabs.empty() || lines.empty()) GTEST_SKIP() << "../shared is missing";
  for (const Vocab& vocab : vocabs) ExpectSameTokens(vocab, lines);
}

// Equal scores everywhere: the leftmost-on-ties rule, stale candidates and
// the -1e10 floor decide the result.
TEST(Tokenizer, MatchesRunCEncodeWhenScoresTie) {
  std::mt19937 rng(11);
  std::vector<std::string> texts = {"aba", "abab", "cc", "ccc", "abcabc cba"};
  for (int i = 0; i < 400; ++i) {
    std::string s;
    const size_t length = rng() % 120;
    for (size_t k = 0; k < length; ++k) s += "abc d"[rng() % 5];
    texts.push_back(s);
  }
  ExpectSameTokens(TieHeavyVocab(), texts);
}

TEST(Tokenizer, LeftmostPairWinsATie) {
  const auto entries = WithSpecialTokens({{0.0f, " "}, {0.0f, "a"}, {0.0f, "b"}, {-1.0f, "ab"}, {-1.0f, "ba"}});
  const std::vector<uint8_t> bytes = Serialize(entries);
  FastTokenizer fast(bytes, static_cast<uint32_t>(entries.size()), 8);
  const uint32_t space = 259, a = 260, ab = 262;
  EXPECT_EQ(fast.Encode("aba", false, false), (std::vector<uint32_t>{space, ab, a}));
}

TEST(Tokenizer, EncodesAndDecodesAllOfWikiText) {
  const fs::path path = kShared / "data/wiki.test.raw";
  const std::vector<Vocab> vocabs = SharedVocabs();
  if (vocabs.empty() || !fs::exists(path)) GTEST_SKIP() << "../shared is missing";
  const std::string text = ReadText(path);
  for (const Vocab& vocab : vocabs) {
    FastTokenizer fast(vocab.bytes, vocab.size, text.size());
    const std::vector<uint32_t> tokens = fast.Encode(text, true, false);
    // BPE with a few hundred to a few thousand merges: between 1.5 and 8 bytes a token.
    EXPECT_GT(tokens.size(), text.size() / 8) << vocab.name;
    EXPECT_LT(tokens.size(), text.size() / 3 * 2) << vocab.name;
    // Byte fallback makes every byte representable, and after BOS the dummy prefix decodes to nothing.
    EXPECT_TRUE(fast.Decode(tokens) == text) << vocab.name;
  }
}

TEST(Tokenizer, DecodeRoundTripsAsciiText) {
  const std::vector<Vocab> vocabs = SharedVocabs();
  if (vocabs.empty()) GTEST_SKIP() << "../shared/models is missing";
  std::mt19937 rng(5);
  for (const Vocab& vocab : vocabs) {
    FastTokenizer fast(vocab.bytes, vocab.size, 400);
    for (int i = 0; i < 100; ++i) {
      const std::string text = RandomAscii(rng, rng() % 400);
      EXPECT_EQ(fast.Decode(fast.Encode(text, true, false)), text) << vocab.name;
    }
  }
}

TEST(Tokenizer, DecodeFollowsRunC) {
  const auto entries = WithSpecialTokens({{0.0f, " "}, {0.0f, " the"}, {0.0f, "<0x4"}, {0.0f, "<0x"}});
  const std::vector<uint8_t> bytes = Serialize(entries);
  FastTokenizer fast(bytes, static_cast<uint32_t>(entries.size()), 8);
  const Tokenizer& t = fast.tokenizer;
  EXPECT_EQ(t.Decode(t.bos(), 260), "the");  // a leading space is dropped only after BOS
  EXPECT_EQ(t.Decode(260, 260), " the");
  EXPECT_EQ(t.Decode(t.bos(), 259), "");
  EXPECT_EQ(t.Decode(5, 3 + 0x0A), "\n");  // <0x0A>
  EXPECT_EQ(t.Decode(5, 3 + 0xE2), "\xE2");
  EXPECT_EQ(t.Decode(5, 3), std::string(1, '\0'));
  EXPECT_EQ(t.Decode(5, 261), "\x04");  // sscanf accepts a single hex digit
  EXPECT_EQ(t.Decode(5, 262), "<0x");
  EXPECT_EQ(t.Decode(5, 1), "\n<s>\n");
  EXPECT_EQ(t.Decode(5, static_cast<uint32_t>(entries.size())), "");
}

TEST(Tokenizer, ReportsBadInputAndLimits) {
  const auto entries = WithSpecialTokens({{0.0f, "a"}});  // no " " for the dummy prefix
  const std::vector<uint8_t> bytes = Serialize(entries);
  const auto vocab_size = static_cast<uint32_t>(entries.size());
  std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(bytes, vocab_size, 4));
  Tokenizer t;
  EXPECT_EQ(t.Init(bytes, vocab_size, std::span(workspace).first(workspace.size() - 1), 4).code,
            StatusCode::kTooLarge);
  EXPECT_EQ(t.Init(std::span(bytes).first(bytes.size() - 1), vocab_size, workspace, 4).code, StatusCode::kTruncated);
  std::vector<uint8_t> larger(Tokenizer::WorkspaceBytes(bytes, vocab_size + 1, 4));
  EXPECT_EQ(t.Init(bytes, vocab_size + 1, larger, 4).code, StatusCode::kTruncated);
  EXPECT_EQ(t.Decode(5, 3), "");  // a failed Init leaves an empty vocabulary
  ASSERT_TRUE(t.Init(bytes, vocab_size, workspace, 4).ok());
  const size_t used = t.arena().used();
  std::vector<uint32_t> tokens(t.MaxTokens(5));
  EXPECT_EQ(t.Encode("aaaaa", true, false, tokens).status().code, StatusCode::kTooLarge);
  EXPECT_EQ(t.Encode("a", true, false, std::span(tokens).first(3)).status().code, StatusCode::kTooLarge);
  EXPECT_EQ(t.Encode("a", true, false, tokens).status().code, StatusCode::kMissing);
  const Result<uint32_t> empty = t.Encode("", true, true, tokens);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.value(), 2u);
  EXPECT_EQ(tokens[0], 1u);  // llama2.c's BOS and EOS
  EXPECT_EQ(tokens[1], 2u);
  EXPECT_EQ(t.bos(), 1u);
  EXPECT_EQ(t.eos(), 2u);
  EXPECT_TRUE(t.add_bos());
  EXPECT_FALSE(t.add_eos());
  // run.c's convention: generated text ends at BOS, not EOS.
  EXPECT_TRUE(t.EndsText(1));
  EXPECT_FALSE(t.EndsText(2));
  // Encode's scratch is returned to the arena.
  EXPECT_EQ(t.arena().used(), used);
  EXPECT_GT(t.arena().high_water(), used);
  EXPECT_LE(t.arena().high_water(), workspace.size());
}

}  // namespace
}  // namespace qmc
