// GGUF checkpoints, written here by a test-side writer: stories260K as GGUF
// v3 (every metadata value type, a SentencePiece vocabulary, F32 and F16
// tensors, non-default alignment) reads back equal to the v0 file with its
// tokenizer converted to tok512.bin's bytes; a Qwen2 GGUF v2 with BF16 tensors
// and rotate-half q/k rows and biases reads back in canonical order; bad input
// is rejected by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "checkpoint_test_support.h"
#include "common/half.h"
#include "host/checkpoint.h"
#include "tiny_model.h"

namespace qmc::testing {
namespace {

using host::Checkpoint;
using host::Tensor;

enum : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };
enum : uint32_t { kTypeF32 = 0, kTypeF16 = 1, kTypeQ4_0 = 2, kTypeBf16 = 30 };

// --- a test-side GGUF writer ---

class GgufWriter {
 public:
  template <typename T>
  GgufWriter& Scalar(const std::string& key, uint32_t type, T value) {
    Key(key, type);
    kv_.Put(value);
    return *this;
  }
  GgufWriter& String(const std::string& key, const std::string& value) {
    Key(key, kString);
    PutString(kv_, value);
    return *this;
  }
  GgufWriter& Strings(const std::string& key, const std::vector<std::string>& values) {
    Key(key, kArray);
    kv_.Put<uint32_t>(kString).Put<uint64_t>(values.size());
    for (const std::string& v : values) PutString(kv_, v);
    return *this;
  }
  template <typename T>
  GgufWriter& Array(const std::string& key, uint32_t element_type, const std::vector<T>& values) {
    Key(key, kArray);
    kv_.Put(element_type).Put<uint64_t>(values.size());
    for (const T& v : values) kv_.Put(v);
    return *this;
  }
  // An array of `count` arrays of u16 {0, 1, 2}: real files rarely nest, the format allows it.
  GgufWriter& NestedArray(const std::string& key, uint64_t count) {
    Key(key, kArray);
    kv_.Put<uint32_t>(kArray).Put<uint64_t>(count);
    for (uint64_t i = 0; i < count; ++i)
      kv_.Put<uint32_t>(kU16).Put<uint64_t>(3).Put<uint16_t>(0).Put<uint16_t>(1).Put<uint16_t>(2);
    return *this;
  }
  // `dims` in GGUF order: the columns first.
  GgufWriter& AddTensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, std::vector<uint8_t> data) {
    tensors_.push_back({name, std::move(dims), type, std::move(data)});
    return *this;
  }

  std::vector<uint8_t> Finish(uint32_t version = 3, uint64_t alignment = 32) const {
    ByteBuilder out;
    out.PutText("GGUF").Put(version).Put<uint64_t>(tensors_.size()).Put(kv_count_);
    out.PutRaw(kv_.bytes.data(), kv_.bytes.size());
    uint64_t offset = 0;
    for (const PendingTensor& t : tensors_) {
      PutString(out, t.name);
      out.Put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) out.Put(d);
      out.Put(t.type).Put(offset);
      offset = (offset + t.data.size() + alignment - 1) / alignment * alignment;
    }
    for (const PendingTensor& t : tensors_) {
      out.PadTo(alignment);
      out.PutRaw(t.data.data(), t.data.size());
    }
    return out.bytes;
  }

 private:
  struct PendingTensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  static void PutString(ByteBuilder& b, const std::string& s) { b.Put<uint64_t>(s.size()).PutText(s); }
  void Key(const std::string& key, uint32_t type) {
    PutString(kv_, key);
    kv_.Put(type);
    ++kv_count_;
  }

  ByteBuilder kv_;
  uint64_t kv_count_ = 0;
  std::vector<PendingTensor> tensors_;
};

std::vector<uint8_t> Encode(const std::vector<float>& values, uint32_t type) {
  ByteBuilder b;
  for (float v : values) {
    if (type == kTypeF32) b.Put(v);
    if (type == kTypeF16) b.Put(FloatToHalf(v));
    if (type == kTypeBf16) b.Put(FloatToBf16(v));
  }
  return b.bytes;
}

std::vector<float> Rounded(const std::vector<float>& values, uint32_t type) {
  std::vector<float> out;
  for (float v : values) {
    out.push_back(type == kTypeF16 ? RoundToHalf(v) : type == kTypeBf16 ? Bf16ToFloat(FloatToBf16(v)) : v);
  }
  return out;
}

using TypeOf = std::function<uint32_t(const std::string&)>;

// The model's hyperparameters as llama.cpp's converter names them.
void AddConfig(GgufWriter& w, const image::ModelConfig& c, const std::string& arch) {
  w.String("general.architecture", arch)
      .Scalar(arch + ".embedding_length", kU32, c.dim)
      .Scalar(arch + ".feed_forward_length", kU32, c.hidden_dim)
      .Scalar(arch + ".block_count", kU32, c.n_layers)
      .Scalar(arch + ".attention.head_count", kU32, c.n_heads)
      .Scalar(arch + ".attention.head_count_kv", kU32, c.n_kv_heads)
      .Scalar(arch + ".context_length", kU32, c.seq_len)
      .Scalar(arch + ".attention.layer_norm_rms_epsilon", kF32, c.norm_eps);
}

// Every tensor of `c`, q/k rows (and biases) reordered rotate-half when asked.
void AddTensors(GgufWriter& w, const Checkpoint& c, const TypeOf& type_of, bool rotate_half) {
  for (const auto& [name, t] : c.tensors) {
    std::vector<float> values = t.data;
    const bool q = name.find("attn_q.") != std::string::npos, k = name.find("attn_k.") != std::string::npos;
    if (rotate_half && (q || k)) {
      values = ToRotateHalf(values, q ? c.config.n_heads : c.config.n_kv_heads, c.config.head_dim);
    }
    w.AddTensor(name, t.rows == 1 ? std::vector<uint64_t>{t.cols} : std::vector<uint64_t>{t.cols, t.rows},
                type_of(name), Encode(values, type_of(name)));
  }
}

void ExpectEqualModulo(const Checkpoint& got, const Checkpoint& want, const TypeOf& type_of) {
  EXPECT_EQ(got.format, "gguf");
  ExpectSameConfig(got.config, want.config);
  EXPECT_EQ(TensorNames(got), TensorNames(want));
  for (const auto& [name, t] : want.tensors) {
    if (got.tensors.count(name) == 0) continue;  // reported above
    const Tensor rounded{t.rows, t.cols, Rounded(t.data, type_of(name))};
    EXPECT_TRUE(TensorMatches(got.tensors.at(name), rounded, Exactly)) << name;
  }
}

// tokenizer.bin entries as (score, text).
std::vector<std::pair<float, std::string>> TokenizerEntries(const std::vector<uint8_t>& bytes) {
  std::vector<std::pair<float, std::string>> entries;
  for (size_t at = 4; at < bytes.size();) {
    float score;
    int32_t length;
    std::memcpy(&score, &bytes[at], 4);
    std::memcpy(&length, &bytes[at + 4], 4);
    entries.emplace_back(score,
                         std::string(reinterpret_cast<const char*>(&bytes[at + 8]), static_cast<size_t>(length)));
    at += 8 + static_cast<size_t>(length);
  }
  return entries;
}

TEST(Gguf, Stories260KV3ReadsBackEqualToV0WithItsTokenizer) {
  QMC_REQUIRE_SHARED(SharedModel("stories260K.bin"));
  QMC_REQUIRE_SHARED(SharedModel("tok512.bin"));
  const Checkpoint v0 = host::LoadLlama2c(SharedModel("stories260K.bin"));
  const std::vector<uint8_t> tok512 = ReadFile(SharedModel("tok512.bin"));

  GgufWriter w;
  w.String("general.name", "stories260K").Scalar("general.alignment", kU32, uint32_t{64});
  AddConfig(w, v0.config, "llama");
  w.Scalar("llama.rope.dimension_count", kU32, v0.config.head_dim)
      .Scalar("llama.rope.freq_base", kF32, 10000.0f)
      // Values of every other type, which the reader must step over.
      .Scalar("test.u8", kU8, uint8_t{1})
      .Scalar("test.i8", kI8, int8_t{-1})
      .Scalar("test.u16", kU16, uint16_t{2})
      .Scalar("test.i16", kI16, int16_t{-2})
      .Scalar("test.i32", kI32, int32_t{-3})
      .Scalar("test.u64", kU64, uint64_t{4})
      .Scalar("test.i64", kI64, int64_t{-5})
      .Scalar("test.f64", kF64, 6.5)
      .Scalar("test.bool", kBool, uint8_t{1})
      .NestedArray("test.nested", 3)
      .Array("test.f64s", kF64, std::vector<double>{1.0, 2.0});
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> token_types;
  for (const auto& [score, text] : TokenizerEntries(tok512)) {
    std::string piece;
    for (char ch : text) piece += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
    tokens.push_back(piece);
    scores.push_back(score);
    token_types.push_back(1);
  }
  w.String("tokenizer.ggml.model", "llama")
      .Strings("tokenizer.ggml.tokens", tokens)
      .Array("tokenizer.ggml.scores", kF32, scores)
      .Array("tokenizer.ggml.token_type", kI32, token_types);
  // The embedding and odd layers in F16, the rest in F32.
  TypeOf type_of = [](const std::string& name) {
    const bool odd_layer = name.rfind("blk.1.", 0) == 0 || name.rfind("blk.3.", 0) == 0;
    return name == "token_embd.weight" || odd_layer ? kTypeF16 : kTypeF32;
  };
  AddTensors(w, v0, type_of, /*rotate_half=*/false);
  ScratchDir dir;
  WriteFile(dir / "stories260K.gguf", w.Finish(3, 64));

  const Checkpoint got = host::LoadGguf(dir / "stories260K.gguf");
  ExpectEqualModulo(got, v0, type_of);
  EXPECT_EQ(got.tokenizer, tok512);  // tok512's max_token_length is its longest token
  EXPECT_NO_THROW(host::ValidateTokenizer(got.tokenizer, got.config.vocab_size));
}

// A tiny Qwen2: separate classifier, q/k/v biases, rotate-half q/k rows.
Checkpoint TinyQwen2() {
  Checkpoint c = TinyCheckpoint(5, /*shared_classifier=*/false);
  c.format = "gguf";
  c.tokenizer.clear();
  c.config.arch = static_cast<uint32_t>(image::Arch::kQwen2);
  c.config.flags |= image::kModelQkvBias;
  c.config.norm_eps = 1e-6f;
  for (uint32_t l = 0; l < c.config.n_layers; ++l) {
    const uint32_t kv = c.config.n_kv_heads * c.config.head_dim;
    const std::pair<const char*, uint32_t> biases[] = {
        {"attn_q.bias", c.config.n_heads * c.config.head_dim}, {"attn_k.bias", kv}, {"attn_v.bias", kv}};
    for (const auto& [suffix, size] : biases) {
      Tensor bias{1, size, {}};
      for (uint32_t j = 0; j < size; ++j) bias.data.push_back(static_cast<float>(l * 1000 + suffix[5] * 10 + j));
      c.tensors["blk." + std::to_string(l) + "." + suffix] = bias;
    }
  }
  return c;
}

TEST(Gguf, Qwen2V2Bf16RowsAndBiasesComeBackInterleaved) {
  const Checkpoint c = TinyQwen2();
  GgufWriter w;
  AddConfig(w, c.config, "qwen2");
  w.Scalar("qwen2.attention.key_length", kU32, c.config.head_dim);  // no rope.freq_base: defaults to 10000
  // A byte-level BPE vocabulary has no scores: no tokenizer is produced.
  std::vector<std::string> tokens;
  for (uint32_t i = 0; i < c.config.vocab_size; ++i) tokens.push_back("t" + std::to_string(i));
  w.String("tokenizer.ggml.model", "gpt2")
      .Strings("tokenizer.ggml.tokens", tokens)
      .Strings("tokenizer.ggml.merges", {"t 1"});
  TypeOf type_of = [](const std::string& name) {
    return name.find(".bias") != std::string::npos || name.find("norm") != std::string::npos ? kTypeF32 : kTypeBf16;
  };
  AddTensors(w, c, type_of, /*rotate_half=*/true);
  ScratchDir dir;
  WriteFile(dir / "qwen2.gguf", w.Finish(2));

  const Checkpoint got = host::LoadGguf(dir / "qwen2.gguf");
  ExpectEqualModulo(got, c, type_of);
  EXPECT_TRUE(got.tokenizer.empty());
}

// --- bad input, on a tiny F32 Llama ---

GgufWriter TinyGguf(
    const std::function<void(GgufWriter&, const Checkpoint&)>& before_tensors = nullptr,
    const TypeOf& type_of = [](const std::string&) { return kTypeF32; }) {
  const Checkpoint c = TinyCheckpoint(9, true);
  GgufWriter w;
  AddConfig(w, c.config, "llama");
  if (before_tensors) before_tensors(w, c);
  AddTensors(w, c, type_of, false);
  return w;
}

TEST(GgufErrors, TheTinyModelItselfLoads) {
  ScratchDir dir;
  WriteFile(dir / "tiny.gguf", TinyGguf().Finish());
  const Checkpoint got = host::LoadGguf(dir / "tiny.gguf");
  EXPECT_EQ(got.tensors.size(), 2u + 9u * 2u);
  EXPECT_EQ(got.config.head_dim, 10u);
}

TEST(GgufErrors, WrongMagicOrVersion) {
  ScratchDir dir;
  std::vector<uint8_t> bytes = TinyGguf().Finish();
  bytes[3] = 'G';
  WriteFile(dir / "magic.gguf", bytes);
  ExpectInputError([&] { host::LoadGguf(dir / "magic.gguf"); }, "magic");
  WriteFile(dir / "short.gguf", {'G', 'G'});
  ExpectInputError([&] { host::LoadGguf(dir / "short.gguf"); }, "magic");
  WriteFile(dir / "v1.gguf", TinyGguf().Finish(1));
  ExpectInputError([&] { host::LoadGguf(dir / "v1.gguf"); }, "version 1");
}

TEST(GgufErrors, UnsupportedTensorTypeIsNamed) {
  ScratchDir dir;
  const TypeOf q4 = [](const std::string& name) { return name == "blk.1.ffn_up.weight" ? kTypeQ4_0 : kTypeF32; };
  WriteFile(dir / "q4.gguf", TinyGguf(nullptr, q4).Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "q4.gguf"); }, "Q4_0");
}

TEST(GgufErrors, TruncationAnywhereIsCaught) {
  ScratchDir dir;
  const std::vector<uint8_t> bytes = TinyGguf().Finish();
  // Cuts every few bytes through the metadata and tensor infos, then a few inside the data.
  for (size_t size = 0; size < bytes.size(); size += size < 2000 ? 5 : 997) {
    WriteFile(dir / "cut.gguf", std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size)));
    EXPECT_THROW(host::LoadGguf(dir / "cut.gguf"), host::InputError) << "cut at " << size;
  }
  WriteFile(dir / "cut.gguf", std::vector<uint8_t>(bytes.begin(), bytes.begin() + 100));
  ExpectInputError([&] { host::LoadGguf(dir / "cut.gguf"); }, "truncated");
  WriteFile(dir / "cut.gguf", std::vector<uint8_t>(bytes.begin(), bytes.end() - 4));
  ExpectInputError([&] { host::LoadGguf(dir / "cut.gguf"); }, "outside the file");
}

TEST(GgufErrors, HugeArrayLengthIsCaughtWithoutAllocating) {
  ScratchDir dir;
  auto huge = [](GgufWriter& w, const Checkpoint&) { w.Array("test.huge", kU32, std::vector<uint32_t>{}); };
  std::vector<uint8_t> bytes = TinyGguf(huge).Finish();
  // Patch the empty array's u64 length (just before the next key) to 2^60.
  const std::string key = "test.huge";
  const auto at =
      std::search(bytes.begin(), bytes.end(), key.begin(), key.end()) + static_cast<std::ptrdiff_t>(key.size()) + 4 + 4;
  const uint64_t count = uint64_t{1} << 60;
  std::memcpy(&*at, &count, 8);
  WriteFile(dir / "huge.gguf", bytes);
  ExpectInputError([&] { host::LoadGguf(dir / "huge.gguf"); }, "truncated");
}

TEST(GgufErrors, MetadataIsChecked) {
  ScratchDir dir;
  GgufWriter no_dim;
  no_dim.String("general.architecture", "llama");
  WriteFile(dir / "no_dim.gguf", no_dim.Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "no_dim.gguf"); }, "llama.embedding_length");

  GgufWriter gpt2;
  gpt2.String("general.architecture", "gpt2");
  WriteFile(dir / "gpt2.gguf", gpt2.Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "gpt2.gguf"); }, "architecture 'gpt2'");

  auto bad_alignment = [](GgufWriter& w, const Checkpoint&) { w.Scalar("general.alignment", kU32, uint32_t{24}); };
  WriteFile(dir / "align.gguf", TinyGguf(bad_alignment).Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "align.gguf"); }, "alignment");

  auto duplicate = [](GgufWriter& w, const Checkpoint& c) { w.Scalar("llama.block_count", kU32, c.config.n_layers); };
  WriteFile(dir / "dup.gguf", TinyGguf(duplicate).Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "dup.gguf"); }, "duplicate");

  auto short_vocab = [](GgufWriter& w, const Checkpoint&) {
    w.Strings("tokenizer.ggml.tokens", {"a", "b"}).Array("tokenizer.ggml.scores", kF32, std::vector<float>{0, 0});
  };
  WriteFile(dir / "vocab.gguf", TinyGguf(short_vocab).Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "vocab.gguf"); }, "vocab_size");
}

TEST(GgufErrors, ShapeMismatchIsNamed) {
  const Checkpoint c = TinyCheckpoint(9, true);
  GgufWriter w;
  AddConfig(w, c.config, "llama");
  for (const auto& [name, t] : c.tensors) {
    std::vector<uint64_t> dims = t.rows == 1 ? std::vector<uint64_t>{t.cols} : std::vector<uint64_t>{t.cols, t.rows};
    if (name == "blk.0.ffn_down.weight") dims = {t.rows, t.cols};  // transposed
    w.AddTensor(name, dims, kTypeF32, Encode(t.data, kTypeF32));
  }
  ScratchDir dir;
  WriteFile(dir / "shape.gguf", w.Finish());
  ExpectInputError([&] { host::LoadGguf(dir / "shape.gguf"); },
                   "tensor 'blk.0.ffn_down.weight' has shape [72, 40], expected [40, 72]");
}

}  // namespace
}  // namespace qmc::testing
