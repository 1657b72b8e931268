// HuggingFace tokenizer.json support: the four paper models' tokenizers,
// compiled to the image's BPE section and run through the freestanding
// encoder (the firmware's code), give llama.cpp's test vectors exactly; the
// section format byte by byte; BOS/EOS per model; decode round trips; what
// is refused; packing, `qmc tokenize` and 1.1 images.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/bpe_format.h"
#include "common/crc32.h"
#include "common/image_reader.h"
#include "common/nfc.h"
#include "common/tokenizer.h"
#include "host/checkpoint.h"
#include "host/pack.h"
#include "host/tokenizer_json.h"
#include "tests/checkpoint_test_support.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"
#include "tests/tiny_model.h"

namespace qmc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kShared = QMC_SHARED_DIR;
constexpr uint32_t kNone = Tokenizer::kNoToken;

struct PaperModel {
  const char* dir;
  const char* vectors;  // llama.cpp's ggml-vocab-<vectors>.gguf.inp/.out
  uint32_t vocab_size;  // embedding rows (config.json)
  uint32_t bos;         // from the tokenizer files alone
  bool add_bos;
  uint32_t eos;
  uint32_t config_bos;  // after config.json has its say
  uint32_t config_eos;
  bool byte_level;
  bool nfc;
};

const PaperModel kModels[] = {
    {"llama-3.2-3b", "llama-bpe", 128256, 128000, true, 128001, 128000, 128001, true, false},
    {"qwen2.5-1.5b-instruct", "qwen2", 151936, kNone, false, 151643, 151643, 151645, true, true},
    {"phi-1_5", "gpt-2", 51200, kNone, false, 50256, kNone, 50256, true, false},
    {"hymba-1.5b-base", "llama-spm", 32001, 1, true, 2, 1, 2, false, false},
};

fs::path TokenizerJson(const PaperModel& m) { return kShared / "models/paper" / m.dir / "tokenizer.json"; }

// Each tokenizer.json is compiled once per test process.
const std::vector<uint8_t>& Compiled(const PaperModel& m) {
  static std::map<std::string, std::vector<uint8_t>> cache;
  auto it = cache.find(m.dir);
  if (it == cache.end()) it = cache.emplace(m.dir, host::LoadTokenizerFile(TokenizerJson(m), m.vocab_size)).first;
  return it->second;
}

bpe::BpeHeader HeaderOf(const std::vector<uint8_t>& section) {
  bpe::BpeHeader h;
  std::memcpy(&h, section.data(), sizeof h);
  return h;
}

// The facade over section bytes, as the firmware holds it. The tokenizer
// reads the section in place, so the encoder keeps its own copy (callers
// pass temporaries).
struct Encoder {
  Encoder(std::vector<uint8_t> bytes, uint32_t vocab_size, size_t max_text)
      : section(std::move(bytes)), workspace(Tokenizer::WorkspaceBytes(section, vocab_size, max_text)) {
    const Status s = tokenizer.Init(section, vocab_size, workspace, max_text);
    EXPECT_TRUE(s.ok()) << s.what;
  }
  std::vector<uint32_t> Encode(std::string_view text, bool bos = false, bool eos = false) {
    std::vector<uint32_t> tokens(tokenizer.MaxTokens(text.size()));
    const Result<uint32_t> n = tokenizer.Encode(text, bos, eos, tokens);
    EXPECT_TRUE(n.ok()) << n.status().what;
    tokens.resize(n.ok() ? n.value() : 0);
    return tokens;
  }
  std::string Decode(const std::vector<uint32_t>& tokens) const {
    std::string text;
    for (size_t i = 0; i < tokens.size(); ++i) text += tokenizer.Decode(i == 0 ? kNone : tokens[i - 1], tokens[i]);
    return text;
  }

  std::vector<uint8_t> section;
  std::vector<uint8_t> workspace;
  Tokenizer tokenizer;
};

struct Vector {
  std::string text;
  std::vector<uint32_t> ids;
};

// As llama.cpp's test-tokenizer-0: texts separated by "\n__ggml_vocab_test__\n"
// (the last one ends with it), ids one line per text, blank-separated.
std::vector<Vector> ReadVectors(const std::string& name) {
  const fs::path base = kShared / "data/tokenizer-tests" / ("ggml-vocab-" + name + ".gguf");
  const std::string inp = Slurp(base.string() + ".inp"), out = Slurp(base.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Vector> vectors;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    vectors.push_back({inp.substr(pos, next == std::string::npos ? std::string::npos : next - pos), {}});
    if (next == std::string::npos) break;
    pos = next + sep.size();
  }
  std::istringstream lines(out);
  size_t i = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    EXPECT_LT(i, vectors.size()) << name << ": more id lines than texts";
    if (i >= vectors.size()) break;
    std::istringstream ids(line);
    for (uint32_t id; ids >> id;) vectors[i].ids.push_back(id);
  }
  EXPECT_EQ(i, vectors.size()) << name << ": id lines and texts differ in number";
  return vectors;
}

std::string JoinIds(const std::vector<uint32_t>& ids) {
  std::string s;
  for (const uint32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

class PaperTokenizer : public ::testing::TestWithParam<PaperModel> {
 protected:
  void SetUp() override {
    if (!fs::exists(TokenizerJson(GetParam())) || !fs::exists(kShared / "data/tokenizer-tests")) {
      GTEST_SKIP() << "../shared is missing the paper tokenizers or the vectors";
    }
  }
};

TEST_P(PaperTokenizer, GivesLlamaCppsVectorsExactly) {
  const PaperModel& m = GetParam();
  const std::vector<Vector> vectors = ReadVectors(m.vectors);
  ASSERT_EQ(vectors.size(), 46u);
  size_t longest = 0;
  for (const Vector& v : vectors) longest = std::max(longest, v.text.size());
  Encoder encoder(Compiled(m), m.vocab_size, longest);
  for (const Vector& v : vectors) {
    EXPECT_EQ(JoinIds(encoder.Encode(v.text)), JoinIds(v.ids)) << m.dir << " text " << json(v.text).dump();
  }
}

TEST_P(PaperTokenizer, BosAndEosFollowTheModelsFiles) {
  const PaperModel& m = GetParam();
  const std::vector<uint8_t>& section = Compiled(m);
  Encoder encoder(section, m.vocab_size, 64);
  const Tokenizer& t = encoder.tokenizer;
  EXPECT_EQ(t.bos(), m.bos);
  EXPECT_EQ(t.add_bos(), m.add_bos);
  EXPECT_EQ(t.eos(), m.eos);
  EXPECT_FALSE(t.add_eos());
  EXPECT_TRUE(t.EndsText(m.eos));
  EXPECT_FALSE(t.EndsText(m.bos));
  const std::vector<uint32_t> plain = encoder.Encode("Hello world");
  const std::vector<uint32_t> with_bos = encoder.Encode("Hello world", t.add_bos(), false);
  std::vector<uint32_t> expected = plain;
  if (m.add_bos) expected.insert(expected.begin(), m.bos);
  EXPECT_EQ(with_bos, expected);
  // A special token written in the text is that token, BOS or not.
  const std::string eos_text(t.Decode(kNone, m.eos));
  EXPECT_EQ(encoder.Encode("Hi" + eos_text), [&] {
    std::vector<uint32_t> ids = encoder.Encode("Hi");
    ids.push_back(m.eos);
    return ids;
  }());

  // config.json: eos_token_id replaces the EOS, bos_token_id fills in a missing BOS.
  std::vector<uint8_t> configured = section;
  host::ApplyConfigSpecialTokens(configured, kShared / "models/paper" / m.dir / "config.json");
  EXPECT_EQ(HeaderOf(configured).bos, m.config_bos);
  EXPECT_EQ(HeaderOf(configured).eos, m.config_eos);
  EXPECT_EQ(HeaderOf(configured).flags, HeaderOf(section).flags);
}

// Random UTF-8 with malformed bytes among it, and the vectors' texts.
std::vector<std::string> RoundTripTexts(const std::vector<Vector>& vectors) {
  std::vector<std::string> texts;
  for (const Vector& v : vectors) texts.push_back(v.text);
  std::mt19937 rng(3);
  const std::vector<std::string> pieces = {"a",
                                           "Z",
                                           " ",
                                           "  ",
                                           "\n",
                                           "\r\n",
                                           "\t",
                                           "'s",
                                           "'LL",
                                           "123456",
                                           "!?",
                                           "é",
                                           "e\xCC\x81",
                                           "日本",
                                           "🦙",
                                           "ſ",
                                           "\xE2\x80\xA8",
                                           "\xFF",
                                           "\x80",
                                           "\xE2\x82",
                                           "<s>",
                                           "<|endoftext|>",
                                           "<|begin_of_text|>",
                                           "\xC2\xA0",
                                           "ΐ",
                                           "\xE0\xA5\x98"};
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int k = rng() % 24; k > 0; --k) s += pieces[rng() % pieces.size()];
    texts.push_back(s);
  }
  return texts;
}

TEST_P(PaperTokenizer, DecodeOfEncodeIsTheText) {
  const PaperModel& m = GetParam();
  const std::vector<std::string> texts = RoundTripTexts(ReadVectors(m.vectors));
  size_t longest = 0;
  for (const std::string& t : texts) longest = std::max(longest, t.size());
  Encoder encoder(Compiled(m), m.vocab_size, longest);
  for (const std::string& text : texts) {
    std::string expected = text;
    if (m.nfc) {  // Qwen2 normalizes first
      std::vector<uint64_t> scratch(nfc::ScratchEntries(text.size()));
      expected.resize(nfc::MaxOutputBytes(text.size()));
      expected.resize(nfc::Normalize(text, scratch.data(), expected.data()));
    }
    // After BOS the sentencepiece decoder drops the space its normalizer prepended.
    const std::vector<uint32_t> tokens = encoder.Encode(text, m.add_bos, false);
    const std::string decoded = encoder.Decode(tokens);
    const std::string bos_text = m.add_bos ? std::string(encoder.tokenizer.Decode(kNone, m.bos)) : "";
    EXPECT_EQ(json(decoded).dump(-1, ' ', false, json::error_handler_t::replace),
              json(bos_text + expected).dump(-1, ' ', false, json::error_handler_t::replace))
        << m.dir;
  }
}

INSTANTIATE_TEST_SUITE_P(Paper, PaperTokenizer, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<PaperModel>& info) {
                           return std::string(info.param.vectors) == "llama-bpe" ? std::string("Llama3")
                                  : std::string(info.param.vectors) == "qwen2"   ? std::string("Qwen2")
                                  : std::string(info.param.vectors) == "gpt-2"   ? std::string("Gpt2")
                                                                                 : std::string("Hymba");
                         });

// --- the CLI ---

// `qmc tokenize --tokenizer FILE --no-special --ids`, text by text.
TEST(HfTokenizerCli, TokenizeGivesTheVectors) {
  const PaperModel& hymba = kModels[3];
  if (!fs::exists(TokenizerJson(hymba))) GTEST_SKIP() << "../shared is missing the paper tokenizers";
  const fs::path dir = FreshTestDir("qmc_tokenize_");
  const std::vector<Vector> vectors = ReadVectors(hymba.vectors);
  // A few processes at a time, each in a directory of its own.
  constexpr size_t kWorkers = 3;
  std::vector<CliRun> runs(vectors.size());
  std::vector<std::thread> workers;
  for (size_t w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      const fs::path own = dir / std::to_string(w);
      fs::create_directories(own);
      for (size_t i = w; i < vectors.size(); i += kWorkers) {
        WriteText(own / "text", vectors[i].text);
        runs[i] = Qmc("tokenize --tokenizer " + TokenizerJson(hymba).string() + " --text " + (own / "text").string() +
                          " --no-special --ids",
                      own);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  for (size_t i = 0; i < vectors.size(); ++i) {
    ASSERT_EQ(runs[i].exit_code, 0) << runs[i].err;
    EXPECT_EQ(runs[i].out, JoinIds(vectors[i].ids) + "\n") << "text " << i;
  }
  // A byte-level one too, and its BOS by default; stdin when no --text.
  WriteText(dir / "text", "Hello world");
  const std::string stdin_text = " --ids < " + (dir / "text").string();
  const CliRun llama = Qmc("tokenize --tokenizer " + TokenizerJson(kModels[0]).string() + stdin_text, dir);
  EXPECT_EQ(llama.out, "128000 9906 1917\n") << llama.err;
  // A tokenizer.bin works too; neither file nor image is a usage error.
  const CliRun bin = Qmc("tokenize --tokenizer " + (kShared / "models/tok512.bin").string() + stdin_text, dir);
  EXPECT_EQ(bin.exit_code, 0) << bin.err;
  EXPECT_TRUE(bin.out.starts_with("1 ")) << bin.out;
  EXPECT_EQ(Qmc("tokenize --ids", dir).exit_code, 2);
  fs::remove_all(dir);
}

// --- a tokenizer.json written here ---

const std::string kMarker = "\xE2\x96\x81";

// A sentencepiece-style BPE as Llama 2's tokenizer.json spells one: <unk>
// <s> </s>, the 256 byte-fallback tokens, "▁", "a", "b", "ab", "▁ab".
json MiniSpm() {
  json vocab = json::object();
  vocab["<unk>"] = 0, vocab["<s>"] = 1, vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  vocab[kMarker] = 259, vocab["a"] = 260, vocab["b"] = 261, vocab["ab"] = 262, vocab[kMarker + "ab"] = 263;
  json added = json::array();
  for (const auto& [id, text] : {std::pair{0, "<unk>"}, {1, "<s>"}, {2, "</s>"}}) {
    added.push_back({{"id", id},
                     {"content", text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", kMarker}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMarker}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", kMarker}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", {"a b", kMarker + " ab"}}}},
  };
}

fs::path WriteJson(const fs::path& dir, const json& j, const std::string& name = "tokenizer.json") {
  fs::create_directories(dir);
  WriteText(dir / name, j.dump());
  return dir / name;
}

// The section, assembled here from docs/image-format.md's layout.
TEST(HfTokenizerFormat, SectionIsByteExact) {
  ScratchDir dir;
  const std::vector<uint8_t> section = host::CompileTokenizerJson(WriteJson(dir.path(), MiniSpm()));

  std::vector<uint8_t> expected;
  const auto u32 = [&](uint32_t v) {
    expected.insert(expected.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)});
  };
  std::vector<std::string> texts = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    texts.push_back(name);
  }
  for (const std::string& t : {kMarker, std::string("a"), std::string("b"), std::string("ab"), kMarker + "ab"})
    texts.push_back(t);
  size_t text_bytes = 0;
  for (const std::string& t : texts) text_bytes += t.size();
  ASSERT_EQ(text_bytes, 1560u);
  // Header: "QTOK", version 1, model 2 (sentencepiece), pre-tokenizer 0,
  // flags prepend|replace|add_bos|strip = 0x5C, 264 tokens, 264 in the
  // vocabulary, 2 merges, 3 added, BOS 1, EOS 2 ("</s>"), longest 6 bytes.
  for (const uint8_t b : {0x51, 0x54, 0x4F, 0x4B, 0x01, 0x00, 0x02, 0x00, 0x5C, 0x00, 0x00, 0x00})
    expected.push_back(b);
  for (const uint32_t v : {264u, 264u, 2u, 3u, 1u, 2u, 6u, 1560u, 0u, 0u, 0u, 0u, 0u}) u32(v);
  ASSERT_EQ(expected.size(), 64u);
  for (uint32_t b = 0; b < 256; ++b) u32(3 + b);  // byte_tokens: <0xXX>
  uint32_t offset = 0;
  u32(0);
  for (const std::string& t : texts) u32(offset += static_cast<uint32_t>(t.size()));
  std::vector<uint32_t> sorted(texts.size());
  for (uint32_t i = 0; i < sorted.size(); ++i) sorted[i] = i;
  std::sort(sorted.begin(), sorted.end(), [&](uint32_t a, uint32_t b) { return texts[a] < texts[b]; });
  for (const uint32_t id : sorted) u32(id);
  for (const uint32_t v : {259u, 262u, 1u, 263u, 260u, 261u, 0u, 262u})
    u32(v);                                                  // merges by (left, right): {left, right, rank, result}
  for (const uint32_t v : {2u, 1u, 1u, 1u, 0u, 1u}) u32(v);  // added by text: "</s>" "<s>" "<unk>", special
  for (const std::string& t : texts) expected.insert(expected.end(), t.begin(), t.end());
  EXPECT_EQ(section, expected);
  EXPECT_TRUE(Tokenizer::Validate(section, 264).ok());

  Encoder encoder(section, 300, 16);
  EXPECT_EQ(encoder.Encode("ab ab", true), (std::vector<uint32_t>{1, 263, 263}));
  EXPECT_EQ(encoder.Encode("b\xFF"), (std::vector<uint32_t>{259, 261, 3 + 0xFF}));  // byte fallback
  EXPECT_EQ(encoder.Decode({1, 263, 259, 261, 3 + 0xFF}), "<s>ab b\xFF");
  EXPECT_EQ(encoder.tokenizer.Decode(1, 263), "ab");  // the decoder strips one space after BOS
}

// The device's validator (shared with the host's) holds the same limit: a
// section whose token grew past 1024 bytes is refused as too large.
TEST(HfTokenizerFormat, TokensLongerThanTheLimitAreRefused) {
  ScratchDir dir;
  json j = MiniSpm();
  j["model"]["vocab"][std::string(1024, 'a')] = 264;
  j["model"]["vocab"]["bb"] = 265;
  std::vector<uint8_t> section = host::CompileTokenizerJson(WriteJson(dir.path(), j));
  ASSERT_TRUE(Tokenizer::Validate(section, 266).ok());
  const size_t end_of_264 = 64 + 1024 + 265 * 4;  // text_offsets[265]
  uint32_t offset;
  std::memcpy(&offset, section.data() + end_of_264, 4);
  ++offset;  // token 264 takes one byte of "bb"
  std::memcpy(section.data() + end_of_264, &offset, 4);
  EXPECT_EQ(Tokenizer::Validate(section, 266).code, StatusCode::kTooLarge);
}

TEST(HfTokenizerFormat, CorruptSectionsAreRefused) {
  ScratchDir dir;
  const std::vector<uint8_t> good = host::CompileTokenizerJson(WriteJson(dir.path(), MiniSpm()));
  const auto refused = [&](size_t offset, uint32_t value) {
    std::vector<uint8_t> bad = good;
    std::memcpy(bad.data() + offset, &value, 4);
    return !Tokenizer::Validate(bad, 264).ok();
  };
  EXPECT_TRUE(refused(0, 0x4B4F5452));         // magic
  EXPECT_TRUE(refused(4, 2));                  // version
  EXPECT_TRUE(refused(8, 0x80));               // unknown flag
  EXPECT_TRUE(refused(8, 0x5D));               // NFC with sentencepiece
  EXPECT_TRUE(refused(12, 265));               // token count past the table
  EXPECT_TRUE(refused(28, 264));               // BOS out of range
  EXPECT_TRUE(refused(44, 1));                 // reserved
  EXPECT_TRUE(refused(64 + 4 * 7, 264));       // a byte token out of range
  EXPECT_TRUE(refused(64 + 1024 + 4 * 5, 0));  // a token offset going backwards
  const size_t sorted = 64 + 1024 + 265 * 4, merges = sorted + 264 * 4, added = merges + 2 * 16;
  EXPECT_TRUE(refused(sorted, 5));                    // vocabulary out of order
  EXPECT_TRUE(refused(merges, 261));                  // merges out of order
  EXPECT_TRUE(refused(merges + 12, 264));             // merge result out of range
  EXPECT_TRUE(refused(added, 1));                     // added tokens out of order
  EXPECT_TRUE(refused(added + 4, 8));                 // unknown added flag
  EXPECT_FALSE(Tokenizer::Validate(good, 263).ok());  // more tokens than the model's rows
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_FALSE(Tokenizer::Validate(longer, 264).ok());
  EXPECT_FALSE(Tokenizer::Validate(std::span(good).first(63), 264).ok());
}

// lstrip and rstrip added tokens swallow the whitespace beside them, as
// HuggingFace's added vocabulary does; the rest of the text is unchanged.
TEST(HfTokenizerFormat, AddedTokensStripWhitespaceWhenAsked) {
  ScratchDir dir;
  json j = MiniSpm();
  j["added_tokens"].push_back({{"id", 264},
                               {"content", "<m>"},
                               {"single_word", false},
                               {"lstrip", true},
                               {"rstrip", true},
                               {"normalized", false},
                               {"special", false}});
  j["added_tokens"].push_back({{"id", 265},
                               {"content", "<m>x"},
                               {"single_word", false},
                               {"lstrip", false},
                               {"rstrip", false},
                               {"normalized", false},
                               {"special", false}});
  Encoder encoder(host::CompileTokenizerJson(WriteJson(dir.path(), j)), 266, 64);
  EXPECT_EQ(encoder.Encode("a \xE3\x80\x80<m>  b"), (std::vector<uint32_t>{259, 260, 264, 259, 261}));
  EXPECT_EQ(encoder.Encode("a <m>x b"),
            (std::vector<uint32_t>{259, 260, 259, 265, 259, 259, 261}));  // the longest wins
  EXPECT_EQ(encoder.Encode("<m><m>"), (std::vector<uint32_t>{264, 264}));
  EXPECT_EQ(encoder.Encode("<s></s>"), (std::vector<uint32_t>{1, 2}));
}

TEST(HfTokenizerFormat, RefusesWhatTheEncoderDoesNotImplement) {
  ScratchDir dir;
  const auto expect_refused = [&](const std::function<void(json&)>& change, const std::string& word) {
    json j = MiniSpm();
    change(j);
    const fs::path path = WriteJson(dir.path(), j);
    ExpectInputError([&] { host::CompileTokenizerJson(path); }, word);
  };
  expect_refused([](json& j) { j["model"]["type"] = "WordPiece"; }, "model type WordPiece");
  expect_refused([](json& j) { j["model"]["type"] = "Unigram"; }, "Unigram");
  expect_refused([](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "normalizer NFKC");
  expect_refused([](json& j) { j["normalizer"]["normalizers"][0]["prepend"] = "_"; }, "normalizer Prepend");
  expect_refused([](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, "pre_tokenizer Metaspace");
  expect_refused(
      [](json& j) {
        j["pre_tokenizer"] = {
            {"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}, {"invert", false}};
      },
      "pattern \"\\\\s+\" is not supported");
  expect_refused([](json& j) { j["added_tokens"][1]["single_word"] = true; }, "single_word");
  expect_refused(
      [](json& j) {
        j["decoder"]["decoders"][3] = {{"type", "Strip"}, {"content", " "}, {"start", 2}, {"stop", 0}};
      },
      "decoder Strip");
  expect_refused(
      [](json& j) {
        j["post_processor"] = {{"type", "RobertaProcessing"}};
      },
      "post_processor RobertaProcessing");
  expect_refused([](json& j) { j["model"]["merges"].push_back("a zz"); }, "merge \"a zz\"");
  expect_refused([](json& j) { j["model"]["byte_fallback"] = false; }, "byte_fallback");
  expect_refused([](json& j) { j["model"]["vocab"]["far"] = 300; }, "no token");
  expect_refused(
      [](json& j) {
        j["model"]["vocab"].erase("<0x41>");
        j["model"]["vocab"]["zz"] = 68;
      },
      "no token for byte 65");
  expect_refused([](json& j) { j["added_tokens"][0]["normalized"] = true; }, "normalized");
  // Longer than a token may be (bpe::kMaxTokenBytes, as llama2.c's limit): refused here, not on the device.
  expect_refused([](json& j) { j["model"]["vocab"][std::string(1025, 'a')] = 264; }, "token 264 is 1025 bytes long");
  // A model larger than the embedding: refused, never cut.
  const fs::path path = WriteJson(dir.path(), MiniSpm());
  ExpectInputError([&] { host::LoadTokenizerFile(path, 263); }, "264 tokens, more than the model's vocab_size 263");
  EXPECT_EQ(host::LoadTokenizerFile(path, 2048), host::CompileTokenizerJson(path));  // a padded embedding is fine
}

// Not quadratic by design: a megabyte of one character is one pre-token of
// a million symbols for GPT-2 and one word for sentencepiece.
TEST(HfTokenizerScale, AMegabyteOfOneCharacterEncodesQuickly) {
  for (const PaperModel* m : {&kModels[2], &kModels[3]}) {
    if (!fs::exists(TokenizerJson(*m))) GTEST_SKIP() << "../shared is missing the paper tokenizers";
    const std::string text(1 << 20, 'a');
    Encoder encoder(Compiled(*m), m->vocab_size, text.size());
    const auto start = std::chrono::steady_clock::now();
    const std::vector<uint32_t> tokens = encoder.Encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: 1 MiB of 'a' -> %zu tokens in %.3f s\n", m->dir, tokens.size(), seconds);
    EXPECT_LT(tokens.size(), text.size() / 2);
    EXPECT_EQ(encoder.Decode(tokens).substr(m->byte_level ? 0 : 1), text);  // sentencepiece: the prepended space
  }
}

// The workspace and token bounds hold for the texts that stretch them most:
// NFC's expansion (Qwen2), every space a marker and byte fallback (sentencepiece).
TEST(HfTokenizerScale, WorstCaseTextsFitTheirBounds) {
  if (!fs::exists(TokenizerJson(kModels[1]))) GTEST_SKIP() << "../shared is missing the paper tokenizers";
  std::string qa;  // U+0958 DEVANAGARI LETTER QA: 3 bytes, NFC 6 (composition-excluded)
  for (int i = 0; i < 200; ++i) qa += "\xE0\xA5\x98";
  ScratchDir dir;
  const std::vector<uint8_t> spm = host::CompileTokenizerJson(WriteJson(dir.path(), MiniSpm()));
  const std::vector<std::pair<const std::vector<uint8_t>*, std::string>> cases = {
      {&Compiled(kModels[1]), qa},
      {&Compiled(kModels[1]), qa + " " + qa},
      {&spm, std::string(300, ' ')},
      {&spm, "\xFF<s>\xFF<s>\xFF<s>\xFF"},
      {&Compiled(kModels[3]), std::string(300, ' ')}};
  for (const auto& [section, text] : cases) {
    const uint32_t vocab = HeaderOf(*section).token_count;
    std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(*section, vocab, text.size()));
    Tokenizer t;
    ASSERT_TRUE(t.Init(*section, vocab, workspace, text.size()).ok());
    std::vector<uint32_t> tokens(t.MaxTokens(text.size()));
    const Result<uint32_t> n = t.Encode(text, t.bos() != kNone, t.eos() != kNone, tokens);
    ASSERT_TRUE(n.ok()) << n.status().what;
    EXPECT_LE(t.arena().high_water(), workspace.size());
    EXPECT_EQ(t.Encode(text, false, false, std::span(tokens).first(t.MaxTokens(text.size()) - 1)).status().code,
              StatusCode::kTooLarge);
    EXPECT_EQ(t.Encode(text + "a", false, false, tokens).status().code, StatusCode::kTooLarge);
  }
}

// --- images ---

// The image as a 1.1 packer would have written it: version 1.1, and no
// model-detail section (1.2's; its payload is left in place, unreferenced,
// and blobs in later sections renumbered).
std::vector<uint8_t> AsVersion11(std::vector<uint8_t> bytes) {
  image::Header header;
  std::memcpy(&header, bytes.data(), sizeof header);
  std::vector<image::SectionEntry> sections(header.section_count);
  std::memcpy(sections.data(), bytes.data() + sizeof header, sections.size() * sizeof(image::SectionEntry));
  const auto detail =
      std::find_if(sections.begin(), sections.end(), [](const image::SectionEntry& s) { return s.kind == 6; });
  if (detail != sections.end()) {
    const auto removed = static_cast<uint32_t>(detail - sections.begin());
    sections.erase(detail);
    for (image::SectionEntry& s : sections) {
      if (s.kind != static_cast<uint8_t>(image::SectionKind::kTensorDirectory)) continue;
      for (uint32_t at = s.file_offset; at < s.file_offset + s.length; at += sizeof(image::TensorEntry)) {
        image::TensorEntry t;
        std::memcpy(&t, bytes.data() + at, sizeof t);
        for (image::BlobRef* blob : {&t.data, &t.scales, &t.outliers}) {
          if (blob->section != image::kNoSection && blob->section > removed) --blob->section;
        }
        std::memcpy(bytes.data() + at, &t, sizeof t);
      }
      s.crc32 = Crc32(bytes.data() + s.file_offset, s.length);
    }
  }
  std::memset(bytes.data() + sizeof header, 0, header.section_count * sizeof(image::SectionEntry));
  header.section_count = static_cast<uint32_t>(sections.size());
  header.version_minor = 1;
  header.header_crc = image::HeaderCrc(header, sections.data());
  std::memcpy(bytes.data(), &header, sizeof header);
  std::memcpy(bytes.data() + sizeof header, sections.data(), sections.size() * sizeof(image::SectionEntry));
  return bytes;
}

// A HuggingFace directory: kjv6M's weights with a tokenizer.json beside them.
class HfPack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(SharedModel("kjv6M-hf/model.safetensors"))) GTEST_SKIP() << "../shared/models is missing";
    dir_ = FreshTestDir("qmc_hf_pack_");
    checkpoint_ = dir_ / "model";
    fs::create_directories(checkpoint_);
    for (const char* file : {"config.json", "model.safetensors"})
      fs::create_symlink(SharedModel("kjv6M-hf") / file, checkpoint_ / file);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  CliRun Pack(const std::string& extra = "") {
    return Qmc("pack " + checkpoint_.string() + " --scheme f32 -q -o " + (dir_ / "out.qmc").string() + extra, dir_);
  }

  fs::path dir_, checkpoint_;
};

TEST_F(HfPack, EmbedsTheDirectorysTokenizerJson) {
  WriteJson(checkpoint_, MiniSpm());
  const CliRun pack = Pack();
  ASSERT_EQ(pack.exit_code, 0) << pack.err;
  const std::vector<uint8_t> image = ReadFile(dir_ / "out.qmc");
  const Result<image::ImageView> view = image::ImageView::OpenFile(image);
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(view.value().Validate().ok());
  EXPECT_EQ(view.value().header().version_minor, 2);

  WriteText(dir_ / "text", "ab ab");
  const CliRun tokens =
      Qmc("tokenize " + (dir_ / "out.qmc").string() + " --ids --text " + (dir_ / "text").string(), dir_);
  EXPECT_EQ(tokens.out, "1 263 263\n") << tokens.err;  // BOS, "▁ab" twice
  const CliRun run = Qmc("run " + (dir_ / "out.qmc").string() + " -p 'ab ab' -n 12 -t 0", dir_);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(run.out.starts_with("ab ab")) << run.out;

  // The firmware runs the same tokenizer: its greedy text is qmc run's.
  const fs::path nvm = dir_ / "nvm";
  ASSERT_EQ(Qmc("nvm write " + (dir_ / "out.qmc").string() + " " + nvm.string(), dir_).exit_code, 0);
  WriteText(dir_ / "link_in.txt", "steps=12 ab ab\n");
  const std::string command = "timeout 120 " QMC_FW_EMU " --nvm " + nvm.string() + " <" +
                              (dir_ / "link_in.txt").string() + " >" + (dir_ / "link_out.txt").string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  const std::string link = Slurp(dir_ / "link_out.txt");
  EXPECT_EQ(qmc::testing::GeneratedText(link), run.out) << link;

  // The same section in an image that says 1.1 is refused.
  const std::vector<uint8_t> old = AsVersion11(image);
  const Result<image::ImageView> old_view = image::ImageView::OpenFile(old);
  ASSERT_TRUE(old_view.ok()) << old_view.status().what;
  EXPECT_STREQ(old_view.value().Validate().what, "BPE tokenizer section in a 1.1 image");
}

TEST_F(HfPack, ATokenizerLargerThanTheEmbeddingIsAnError) {
  if (!fs::exists(TokenizerJson(kModels[3]))) GTEST_SKIP() << "../shared is missing the paper tokenizers";
  fs::create_symlink(TokenizerJson(kModels[3]), checkpoint_ / "tokenizer.json");  // 32001 tokens, 2048 rows
  const CliRun r = Pack();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("32001 tokens, more than the model's vocab_size 2048"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.qmc"));
  // --tokenizer wins over the directory's file.
  EXPECT_EQ(Pack(" --tokenizer " + SharedModel("kjv_tok2048.bin").string()).exit_code, 0);
}

// Images written before 1.2 hold llama2.c tokenizers and still load.
TEST(HfTokenizerImages, Version11ImagesWithLlama2cTokenizersStillLoad) {
  host::QuantOptions options;
  options.quantizer = image::Quantizer::kF32;
  const std::vector<uint8_t> bytes = AsVersion11(host::PackModel(TinyCheckpoint(), options).image);
  const Result<image::ImageView> view = image::ImageView::OpenFile(bytes);
  ASSERT_TRUE(view.ok()) << view.status().what;
  ASSERT_TRUE(view.value().Validate().ok()) << view.value().Validate().what;
  std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(view.value(), 16));
  Tokenizer t;
  ASSERT_TRUE(t.Init(view.value(), workspace, 16).ok());
  EXPECT_EQ(t.bos(), 1u);
  EXPECT_TRUE(t.EndsText(1));
}

}  // namespace
}  // namespace qmc::testing
