// llama2.c checkpoints: the shared v0 models read with the right config and
// shapes, and values equal to the raw floats at offsets computed here from the
// v0 layout; a v2 "ak42" file written here round-trips within Q8_0 error; the
// tokenizer.bin reader; and bad input rejected by name.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "checkpoint_test_support.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"

namespace qmc::testing {
namespace {

using host::Checkpoint;
using host::Tensor;

// The v0 file layout as llama2.c's legacy_export writes it, independent of the reader.
struct V0Layout {
  int64_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;

  int64_t head_size() const { return dim / heads; }
  int64_t kv_dim() const { return kv_heads * head_size(); }

  struct Section {
    const char* name;
    int64_t rows, cols;  // of one layer's tensor
    int64_t count;       // tensors of that shape in a row (n_layers, or 1)
  };
  std::vector<Section> Sections() const {
    return {{"tok", vocab, dim, 1},
            {"rms_att", 1, dim, layers},
            {"wq", dim, dim, layers},
            {"wk", kv_dim(), dim, layers},
            {"wv", kv_dim(), dim, layers},
            {"wo", dim, dim, layers},
            {"rms_ffn", 1, dim, layers},
            {"w1", hidden, dim, layers},
            {"w2", dim, hidden, layers},
            {"w3", hidden, dim, layers},
            {"rms_final", 1, dim, 1},
            {"freq_real", seq_len, head_size() / 2, 1},
            {"freq_imag", seq_len, head_size() / 2, 1},
            {"wcls", vocab, dim, 1}};
  }
  // Byte offset of element [row][col] of `layer`'s tensor in `section`.
  int64_t Offset(const std::string& section, int64_t layer, int64_t row, int64_t col) const {
    int64_t floats = 0;
    for (const Section& s : Sections()) {
      if (section == s.name) return 28 + 4 * (floats + (layer * s.rows + row) * s.cols + col);
      floats += s.rows * s.cols * s.count;
    }
    ADD_FAILURE() << "no section " << section;
    return 0;
  }
};

float RawFloat(const std::vector<uint8_t>& file, int64_t offset) {
  float value = std::numeric_limits<float>::quiet_NaN();
  if (offset >= 0 && static_cast<size_t>(offset) + sizeof value <= file.size()) {
    std::memcpy(&value, &file[static_cast<size_t>(offset)], sizeof value);
  } else {
    ADD_FAILURE() << "offset " << offset << " lies outside the file";
  }
  return value;
}

// Canonical names and shapes a shared-classifier llama of this layout has.
std::map<std::string, std::pair<uint32_t, uint32_t>> ExpectedShapes(const V0Layout& m) {
  auto u = [](int64_t v) { return static_cast<uint32_t>(v); };
  std::map<std::string, std::pair<uint32_t, uint32_t>> shapes = {{"token_embd.weight", {u(m.vocab), u(m.dim)}},
                                                                 {"output_norm.weight", {1, u(m.dim)}}};
  for (int64_t l = 0; l < m.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    shapes[p + "attn_norm.weight"] = {1, u(m.dim)};
    shapes[p + "attn_q.weight"] = {u(m.dim), u(m.dim)};
    shapes[p + "attn_k.weight"] = {u(m.kv_dim()), u(m.dim)};
    shapes[p + "attn_v.weight"] = {u(m.kv_dim()), u(m.dim)};
    shapes[p + "attn_output.weight"] = {u(m.dim), u(m.dim)};
    shapes[p + "ffn_norm.weight"] = {1, u(m.dim)};
    shapes[p + "ffn_gate.weight"] = {u(m.hidden), u(m.dim)};
    shapes[p + "ffn_up.weight"] = {u(m.hidden), u(m.dim)};
    shapes[p + "ffn_down.weight"] = {u(m.dim), u(m.hidden)};
  }
  return shapes;
}

void CheckSharedV0Model(const std::filesystem::path& path, const V0Layout& m) {
  const Checkpoint c = host::LoadLlama2c(path);
  EXPECT_EQ(c.format, "llama2c-v0");
  const image::ModelConfig want{static_cast<uint32_t>(image::Arch::kLlama),
                                static_cast<uint32_t>(m.dim),
                                static_cast<uint32_t>(m.hidden),
                                static_cast<uint32_t>(m.layers),
                                static_cast<uint32_t>(m.heads),
                                static_cast<uint32_t>(m.kv_heads),
                                static_cast<uint32_t>(m.head_size()),
                                static_cast<uint32_t>(m.vocab),
                                static_cast<uint32_t>(m.seq_len),
                                10000.0f,
                                1e-5f,
                                image::kModelSharedClassifier};
  ExpectSameConfig(c.config, want);
  EXPECT_TRUE(c.tokenizer.empty());

  const auto shapes = ExpectedShapes(m);
  EXPECT_EQ(c.tensors.size(), shapes.size());
  for (const auto& [name, shape] : shapes) {
    const auto it = c.tensors.find(name);
    ASSERT_NE(it, c.tensors.end()) << "missing " << name;
    EXPECT_EQ(it->second.rows, shape.first) << name;
    EXPECT_EQ(it->second.cols, shape.second) << name;
    EXPECT_EQ(it->second.data.size(), static_cast<size_t>(shape.first) * shape.second) << name;
  }

  const std::vector<uint8_t> file = ReadFile(path);
  // The layout accounts for every byte of a shared-classifier file: wcls is where the file ends.
  ASSERT_EQ(static_cast<int64_t>(file.size()), m.Offset("wcls", 0, 0, 0));

  struct Probe {
    std::string name;
    const char* section;
    int64_t layer;
  };
  const int64_t last = m.layers - 1;
  auto blk = [](int64_t l, const char* suffix) { return "blk." + std::to_string(l) + "." + suffix; };
  const Probe probes[] = {{"token_embd.weight", "tok", 0},
                          {blk(0, "attn_norm.weight"), "rms_att", 0},
                          {blk(last, "attn_q.weight"), "wq", last},
                          {blk(1, "attn_k.weight"), "wk", 1},
                          {blk(last, "attn_v.weight"), "wv", last},
                          {blk(1, "attn_output.weight"), "wo", 1},
                          {blk(last, "ffn_norm.weight"), "rms_ffn", last},
                          {blk(0, "ffn_gate.weight"), "w1", 0},
                          {blk(last, "ffn_down.weight"), "w2", last},
                          {blk(1, "ffn_up.weight"), "w3", 1},
                          {"output_norm.weight", "rms_final", 0}};
  for (const Probe& probe : probes) {
    const Tensor& t = c.tensors.at(probe.name);
    // Corners and a few scattered elements.
    const std::pair<int64_t, int64_t> positions[] = {
        {0, 0},          {t.rows - 1, t.cols - 1}, {0, t.cols - 1},
        {t.rows - 1, 0}, {t.rows / 2, t.cols / 3}, {(t.rows * 7) / 11, (t.cols * 5) / 13}};
    for (const auto& [row, col] : positions) {
      const float raw = RawFloat(file, m.Offset(probe.section, probe.layer, row, col));
      EXPECT_EQ(t.data[static_cast<size_t>(row * t.cols + col)], raw)
          << probe.name << " [" << row << "][" << col << "]";
    }
  }
}

const V0Layout kStories260K{64, 172, 5, 8, 4, 512, 512};
const V0Layout kKjv6M{288, 768, 6, 6, 2, 2048, 256};

TEST(Llama2cV0, Stories260KConfigShapesAndValues) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  CheckSharedV0Model(SharedModel("stories260K.bin"), kStories260K);
}

TEST(Llama2cV0, Kjv6MConfigShapesAndValues) {
  QMC_REQUIRE_SHARED(SharedModel("kjv6M.bin"));
  CheckSharedV0Model(SharedModel("kjv6M.bin"), kKjv6M);
}

// A negative vocab_size means the classifier follows the RoPE tables.
TEST(Llama2cV0, SeparateClassifierIsReadFromTheEnd) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  ScratchDir dir;
  std::vector<uint8_t> bytes = ReadFile(SharedModel("stories260K.bin"));
  const int32_t negated = -static_cast<int32_t>(kStories260K.vocab);
  std::memcpy(&bytes[5 * 4], &negated, 4);
  ByteBuilder wcls{std::move(bytes)};
  Tensor want{512, 64, {}};
  for (int i = 0; i < 512 * 64; ++i) {
    want.data.push_back(static_cast<float>(i % 977) * 0.001f - 0.5f);
    wcls.Put(want.data.back());
  }
  WriteFile(dir / "untied.bin", wcls.bytes);

  const Checkpoint c = host::LoadLlama2c(dir / "untied.bin");
  EXPECT_EQ(c.config.flags & image::kModelSharedClassifier, 0u);
  EXPECT_EQ(c.config.vocab_size, 512u);
  ASSERT_EQ(c.tensors.count("output.weight"), 1u);
  EXPECT_TRUE(TensorMatches(c.tensors.at("output.weight"), want, Exactly));
  const Checkpoint shared = host::LoadLlama2c(SharedModel("stories260K.bin"));
  EXPECT_TRUE(TensorMatches(c.tensors.at("token_embd.weight"), shared.tensors.at("token_embd.weight"), Exactly));
}

// --- v2 "ak42": a test-side writer following export.py's version2_export ---

struct Ak42File {
  std::vector<uint8_t> bytes;
  std::map<std::string, std::vector<float>> scales;  // per quantized tensor, one per group
};

Ak42File WriteAk42(const Checkpoint& v0, bool shared, int32_t group_size) {
  const image::ModelConfig& c = v0.config;
  Ak42File out;
  ByteBuilder b;
  b.Put<uint32_t>(0x616b3432).Put<int32_t>(2);
  for (uint32_t v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len}) {
    b.Put(static_cast<int32_t>(v));
  }
  b.Put<uint8_t>(shared ? 1 : 0).Put(group_size);
  b.bytes.resize(256, 0);
  auto layers = [&](const char* suffix) {
    std::vector<std::string> names;
    for (uint32_t l = 0; l < c.n_layers; ++l) names.push_back("blk." + std::to_string(l) + "." + suffix);
    return names;
  };
  std::vector<std::string> norms = layers("attn_norm.weight");
  for (const std::string& n : layers("ffn_norm.weight")) norms.push_back(n);
  norms.push_back("output_norm.weight");
  for (const std::string& name : norms) {
    for (float w : v0.tensors.at(name).data) b.Put(w);
  }
  std::vector<std::string> quantized = {"token_embd.weight"};
  for (const char* kind : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight",
                           "ffn_down.weight", "ffn_up.weight"}) {
    for (const std::string& n : layers(kind)) quantized.push_back(n);
  }
  if (!shared) quantized.push_back("output.weight");
  for (const std::string& name : quantized) {
    // The separate classifier is synthesised from the embedding (stories260K ties them).
    const std::vector<float>& w = v0.tensors.at(name == "output.weight" ? "token_embd.weight" : name).data;
    std::vector<float>& scales = out.scales[name];
    std::vector<int8_t> q(w.size());
    for (size_t g = 0; g < w.size() / group_size; ++g) {
      float max_abs = 0;
      for (size_t i = g * group_size; i < (g + 1) * group_size; ++i) max_abs = std::max(max_abs, std::fabs(w[i]));
      const float scale = max_abs / 127.0f;
      for (size_t i = g * group_size; i < (g + 1) * group_size; ++i) {
        q[i] = static_cast<int8_t>(scale == 0 ? 0 : std::lround(w[i] / scale));
      }
      scales.push_back(scale);
    }
    b.PutRaw(q.data(), q.size());
    for (float s : scales) b.Put(s);
  }
  out.bytes = std::move(b.bytes);
  return out;
}

void CheckV2RoundTrip(bool shared) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  const Checkpoint v0 = host::LoadLlama2c(SharedModel("stories260K.bin"));
  ScratchDir dir;
  constexpr int32_t kGroup = 64;
  const Ak42File file = WriteAk42(v0, shared, kGroup);
  WriteFile(dir / "q80.bin", file.bytes);

  const Checkpoint v2 = host::LoadLlama2c(dir / "q80.bin");
  EXPECT_EQ(v2.format, "llama2c-v2");
  image::ModelConfig want = v0.config;
  if (!shared) want.flags &= ~image::kModelSharedClassifier;
  ExpectSameConfig(v2.config, want);
  EXPECT_EQ(v2.tensors.size(), v0.tensors.size() + (shared ? 0 : 1));
  for (const auto& [name, got] : v2.tensors) {
    const Tensor& original = v0.tensors.at(name == "output.weight" ? "token_embd.weight" : name);
    const auto scales = file.scales.find(name);
    if (scales == file.scales.end()) {  // a norm, kept in f32
      EXPECT_TRUE(TensorMatches(got, original, Exactly)) << name;
      continue;
    }
    // Rounding to the nearest code is off by at most half a step (plus float rounding).
    const std::vector<float>& s = scales->second;
    EXPECT_TRUE(TensorMatches(got, original, [&](float g, float w, size_t i) {
      return std::fabs(g - w) <= 0.5f * s[i / kGroup] + 1e-6f * std::fabs(w);
    })) << name;
  }
}

TEST(Llama2cV2, Q80SharedClassifierMatchesV0WithinHalfAStep) { CheckV2RoundTrip(true); }
TEST(Llama2cV2, Q80SeparateClassifierMatchesV0WithinHalfAStep) { CheckV2RoundTrip(false); }

// --- bad input ---

TEST(Llama2cErrors, TruncatedV0FileIsNamed) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  ScratchDir dir;
  std::vector<uint8_t> bytes = ReadFile(SharedModel("stories260K.bin"));
  bytes.resize(bytes.size() - 100);
  WriteFile(dir / "short.bin", bytes);
  ExpectInputError([&] { host::LoadLlama2c(dir / "short.bin"); }, "truncated");
  ExpectInputError([&] { host::LoadLlama2c(dir / "short.bin"); }, "short.bin");
}

TEST(Llama2cErrors, TrailingBytesAreRejected) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  ScratchDir dir;
  std::vector<uint8_t> bytes = ReadFile(SharedModel("stories260K.bin"));
  bytes.push_back(0);
  WriteFile(dir / "long.bin", bytes);
  ExpectInputError([&] { host::LoadLlama2c(dir / "long.bin"); }, "trailing");
}

TEST(Llama2cErrors, HeaderFieldsAreChecked) {
  ScratchDir dir;
  ByteBuilder zero_heads;
  for (int32_t v : {64, 172, 5, 0, 4, 512, 512}) zero_heads.Put(v);
  WriteFile(dir / "zero_heads.bin", zero_heads.bytes);
  ExpectInputError([&] { host::LoadLlama2c(dir / "zero_heads.bin"); }, "n_heads");

  ByteBuilder tiny;
  tiny.Put<int32_t>(64);
  WriteFile(dir / "tiny.bin", tiny.bytes);
  ExpectInputError([&] { host::LoadLlama2c(dir / "tiny.bin"); }, "truncated");

  // A missing file is an I/O error (exit 4), not bad input.
  EXPECT_THROW(host::LoadLlama2c(dir / "absent.bin"), host::IoError);
}

// A text file has no magic and would otherwise be read as a llama2.c v0
// header ("dim 1953460082 is not a multiple of n_heads").
TEST(Llama2cErrors, TextIsNotACheckpoint) {
  ScratchDir dir;
  const std::string text = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
  WriteFile(dir / "passwd", std::vector<uint8_t>(text.begin(), text.end()));
  ExpectInputError([&] { host::LoadCheckpoint(dir / "passwd"); }, "not a recognised checkpoint format");
  // Binary llama2.c files still load, and their own errors still name the problem.
  ByteBuilder zero_heads;
  for (int32_t v : {64, 172, 5, 0, 4, 512, 512}) zero_heads.Put(v);
  WriteFile(dir / "zero_heads.bin", zero_heads.bytes);
  ExpectInputError([&] { host::LoadCheckpoint(dir / "zero_heads.bin"); }, "n_heads");
}

TEST(Llama2cErrors, V2HeaderIsChecked) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  const Checkpoint v0 = host::LoadLlama2c(SharedModel("stories260K.bin"));
  ScratchDir dir;
  std::vector<uint8_t> bytes = WriteAk42(v0, true, 64).bytes;

  std::vector<uint8_t> version1 = bytes;
  version1[4] = 1;
  WriteFile(dir / "v1.bin", version1);
  ExpectInputError([&] { host::LoadLlama2c(dir / "v1.bin"); }, "version 1");

  std::vector<uint8_t> group = bytes;
  const int32_t odd_group = 100;  // 172 * 64 weights do not split into groups of 100
  std::memcpy(&group[37], &odd_group, 4);
  WriteFile(dir / "group.bin", group);
  ExpectInputError([&] { host::LoadLlama2c(dir / "group.bin"); }, "group_size");

  bytes.resize(bytes.size() - 1);
  WriteFile(dir / "short.bin", bytes);
  ExpectInputError([&] { host::LoadLlama2c(dir / "short.bin"); }, "truncated");
}

// --- tokenizer.bin ---

// Byte length of the header and the first `count` entries, walked independently.
size_t TokenizerPrefix(const std::vector<uint8_t>& bytes, uint32_t count) {
  size_t at = 4;
  for (uint32_t i = 0; i < count; ++i) {
    int32_t length;
    std::memcpy(&length, &bytes.at(at + 4), 4);
    at += 8 + static_cast<size_t>(length);
  }
  return at;
}

TEST(TokenizerFile, ReadsExactlyVocabSizeEntries) {
  QMC_REQUIRE_SHARED(SharedModel("tok512.bin"));
  QMC_REQUIRE_SHARED(SharedModel("tokenizer.bin"));
  const std::vector<uint8_t> tok512 = ReadFile(SharedModel("tok512.bin"));
  EXPECT_EQ(host::LoadTokenizerFile(SharedModel("tok512.bin"), 512), tok512);
  EXPECT_NO_THROW(host::ValidateTokenizer(tok512, 512));
  const std::vector<uint8_t> llama = ReadFile(SharedModel("tokenizer.bin"));
  EXPECT_NO_THROW(host::ValidateTokenizer(llama, 32000));
  EXPECT_EQ(host::LoadTokenizerFile(SharedModel("tokenizer.bin")), llama);  // no model: every entry
  EXPECT_EQ(host::TokenizerTokenCount(llama), 32000u);
}

// A vocabulary larger than the model's embedding is not cut to fit: tokens
// past it would be lost.
TEST(TokenizerFile, MoreEntriesThanTheVocabIsAnError) {
  QMC_REQUIRE_SHARED(SharedModel("tokenizer.bin"));
  ExpectInputError([] { host::LoadTokenizerFile(SharedModel("tokenizer.bin"), 512); }, "32000 entries, more than");
  const std::vector<uint8_t> llama = ReadFile(SharedModel("tokenizer.bin"));
  const std::vector<uint8_t> first512(llama.begin(), llama.begin() + static_cast<std::ptrdiff_t>(TokenizerPrefix(llama, 512)));
  EXPECT_NO_THROW(host::ValidateTokenizer(first512, 512));
}

TEST(TokenizerFile, TooFewEntriesIsAnError) {
  QMC_REQUIRE_SHARED(SharedModel("tok512.bin"));
  ExpectInputError([] { host::LoadTokenizerFile(SharedModel("tok512.bin"), 513); }, "entries");
  ExpectInputError([] { host::LoadTokenizerFile(SharedModel("tok512.bin"), 513); }, "tok512.bin");
  const std::vector<uint8_t> tok512 = ReadFile(SharedModel("tok512.bin"));
  ExpectInputError([&] { host::ValidateTokenizer(tok512, 513); }, "entries");
  ExpectInputError([&] { host::ValidateTokenizer(tok512, 511); }, "512 entries, more than the model's vocab_size 511");
  std::vector<uint8_t> ragged = tok512;
  ragged.push_back(0);
  ExpectInputError([&] { host::ValidateTokenizer(ragged, 512); }, "1 bytes follow");
}

TEST(TokenizerFile, MalformedEntriesAreErrors) {
  auto tokenizer = [](float score, int32_t length, const std::string& text) {
    ByteBuilder b;
    b.Put<int32_t>(4).Put(1.0f).Put<int32_t>(1).PutText("a").Put(score).Put(length).PutText(text);
    return b.bytes;
  };
  EXPECT_NO_THROW(host::ValidateTokenizer(tokenizer(-2.0f, 2, "bc"), 2));
  ExpectInputError([&] { host::ValidateTokenizer(tokenizer(-2.0f, 0, ""), 2); }, "length 0");
  ExpectInputError([&] { host::ValidateTokenizer(tokenizer(-2.0f, 5, "bcdef"), 2); }, "max_token_length");
  ExpectInputError([&] { host::ValidateTokenizer(tokenizer(-2.0f, 3, "bc"), 2); }, "truncated");
  ExpectInputError([&] { host::ValidateTokenizer(tokenizer(std::numeric_limits<float>::quiet_NaN(), 2, "bc"), 2); },
                   "score");
}

}  // namespace
}  // namespace qmc::testing
