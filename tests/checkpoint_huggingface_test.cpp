// HuggingFace checkpoints: the shared kjv6M-hf directory (BF16, rotate-half q/k
// rows) read equal to kjv6M.bin read as llama2.c v0, which proves the q/k row
// reordering; sharded, F16, BF16, Qwen2-with-biases copies written here by the
// test-side safetensors writer (tests/hf_directory.h) read back equal; bad
// input rejected by name.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "checkpoint_test_support.h"
#include "common/half.h"
#include "host/checkpoint.h"
#include "tests/hf_directory.h"
#include "tiny_model.h"

namespace qmc::testing {
namespace {

namespace fs = std::filesystem;
using host::Checkpoint;
using host::Tensor;
using nlohmann::json;

// --- a test-side writer of HF directories ---

std::string HfName(const std::string& canonical) {
  if (canonical == "token_embd.weight") return "model.embed_tokens.weight";
  if (canonical == "output_norm.weight") return "model.norm.weight";
  if (canonical == "output.weight") return "lm_head.weight";
  const std::map<std::string, std::string> layer = {{"attn_norm.weight", "input_layernorm.weight"},
                                                    {"attn_q.weight", "self_attn.q_proj.weight"},
                                                    {"attn_k.weight", "self_attn.k_proj.weight"},
                                                    {"attn_v.weight", "self_attn.v_proj.weight"},
                                                    {"attn_q.bias", "self_attn.q_proj.bias"},
                                                    {"attn_k.bias", "self_attn.k_proj.bias"},
                                                    {"attn_v.bias", "self_attn.v_proj.bias"},
                                                    {"attn_output.weight", "self_attn.o_proj.weight"},
                                                    {"ffn_norm.weight", "post_attention_layernorm.weight"},
                                                    {"ffn_gate.weight", "mlp.gate_proj.weight"},
                                                    {"ffn_up.weight", "mlp.up_proj.weight"},
                                                    {"ffn_down.weight", "mlp.down_proj.weight"}};
  const size_t dot = canonical.find('.', 4);
  return "model.layers." + canonical.substr(4, dot - 4) + "." + layer.at(canonical.substr(dot + 1));
}

// What the reader should return for `values` stored as `dtype`.
std::vector<float> Rounded(const std::vector<float>& values, const std::string& dtype) {
  std::vector<float> out;
  for (float v : values) {
    out.push_back(dtype == "F16" ? RoundToHalf(v) : dtype == "BF16" ? Bf16ToFloat(FloatToBf16(v)) : v);
  }
  return out;
}

// The canonical tensors in HF's naming, shapes and rotate-half q/k order.
std::vector<StTensor> HfTensors(const Checkpoint& c, const std::function<std::string(const std::string&)>& dtype_of) {
  std::vector<StTensor> out;
  for (const auto& [name, t] : c.tensors) {
    std::vector<float> values = t.data;
    const bool q = name.find("attn_q.") != std::string::npos, k = name.find("attn_k.") != std::string::npos;
    if (q || k) values = ToRotateHalf(values, q ? c.config.n_heads : c.config.n_kv_heads, c.config.head_dim);
    const std::vector<uint64_t> shape =
        t.rows == 1 ? std::vector<uint64_t>{t.cols} : std::vector<uint64_t>{t.rows, t.cols};
    const std::string dtype = dtype_of(name);
    out.push_back({HfName(name), dtype, shape, Encode(values, dtype)});
  }
  return out;
}

json ConfigJson(const image::ModelConfig& c, const std::string& model_type) {
  return {{"architectures", {model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
          {"model_type", model_type},
          {"hidden_size", c.dim},
          {"intermediate_size", c.hidden_dim},
          {"num_hidden_layers", c.n_layers},
          {"num_attention_heads", c.n_heads},
          {"num_key_value_heads", c.n_kv_heads},
          {"vocab_size", c.vocab_size},
          {"max_position_embeddings", c.seq_len},
          {"rms_norm_eps", c.norm_eps},
          {"rope_theta", c.rope_theta},
          {"rope_scaling", nullptr},
          {"torch_dtype", "float32"}};
}

// The canonical checkpoint the reader should return for `c` stored with `dtype_of`.
Checkpoint Expected(const Checkpoint& c, const std::function<std::string(const std::string&)>& dtype_of) {
  Checkpoint want = c;
  for (auto& [name, t] : want.tensors) t.data = Rounded(t.data, dtype_of(name));
  return want;
}

void ExpectSameCheckpoint(const Checkpoint& got, const Checkpoint& want) {
  EXPECT_EQ(got.format, "safetensors");
  ExpectSameConfig(got.config, want.config);
  EXPECT_EQ(TensorNames(got), TensorNames(want));
  for (const auto& [name, t] : want.tensors) {
    if (got.tensors.count(name) == 0) continue;  // reported above
    EXPECT_TRUE(TensorMatches(got.tensors.at(name), t, Exactly)) << name;
  }
}

// --- the shared model ---

TEST(HuggingFace, Kjv6MEqualsLlama2cV0UpToBf16Rounding) {
  QMC_REQUIRE_SHARED(SharedModel("kjv6M-hf/model.safetensors"));
  QMC_REQUIRE_SHARED(SharedModel("kjv6M.bin"));
  const Checkpoint hf = host::LoadHuggingFace(SharedModel("kjv6M-hf"));
  const Checkpoint v0 = host::LoadLlama2c(SharedModel("kjv6M.bin"));
  EXPECT_EQ(hf.format, "safetensors");
  ExpectSameConfig(hf.config, v0.config);
  ASSERT_EQ(TensorNames(hf), TensorNames(v0));
  for (const auto& [name, want] : v0.tensors) {
    EXPECT_TRUE(TensorMatches(hf.tensors.at(name), want, [](float got, float w, size_t) {
      return std::fabs(got - w) <= 0x1p-8f * std::fabs(w) + 1e-30f;
    })) << name;
  }
}

// --- copies written here ---

TEST(HuggingFace, ShardedF32AndF16WithSeparateHeadReadBackEqual) {
  Checkpoint c = TinyCheckpoint(7, /*shared_classifier=*/false);
  c.format = "safetensors";
  c.tokenizer.clear();
  // Even layers and the embedding in F32 in shard 1; the rest in F16 in shard 2.
  auto dtype_of = [](const std::string& name) {
    return name == "token_embd.weight" || name.rfind("blk.0.", 0) == 0 ? "F32" : "F16";
  };
  std::vector<StTensor> all = HfTensors(c, dtype_of);
  // Tensors the reader must ignore.
  all.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {5}, Encode({1, 2, 3, 4, 5}, "F32")});
  std::vector<StTensor> shards[2];
  json weight_map = json::object();
  for (StTensor& t : all) {
    const int shard = t.dtype == "F32" ? 0 : 1;
    weight_map[t.name] = shard == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    shards[shard].push_back(std::move(t));
  }
  ScratchDir dir;
  json config = ConfigJson(c.config, "llama");
  config["tie_word_embeddings"] = false;
  WriteText(dir / "config.json", config.dump(2));
  WriteFile(dir / "model-00001-of-00002.safetensors", SafetensorsBytes(shards[0]));
  WriteFile(dir / "model-00002-of-00002.safetensors", SafetensorsBytes(shards[1]));
  WriteText(dir / "model.safetensors.index.json",
            json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());

  ExpectSameCheckpoint(host::LoadHuggingFace(dir.path()), Expected(c, dtype_of));
}

TEST(HuggingFace, Qwen2BiasesAreReorderedAndHeadDefaultsToTied) {
  Checkpoint c = TinyCheckpoint(11, /*shared_classifier=*/true);
  c.format = "safetensors";
  c.tokenizer.clear();
  c.config.arch = static_cast<uint32_t>(image::Arch::kQwen2);
  c.config.flags |= image::kModelQkvBias;
  c.config.rope_theta = 1000000.0f;
  c.config.norm_eps = 1e-6f;
  for (uint32_t l = 0; l < c.config.n_layers; ++l) {
    const uint32_t kv = c.config.n_kv_heads * c.config.head_dim;
    const uint32_t sizes[] = {c.config.n_heads * c.config.head_dim, kv, kv};
    const char* names[] = {"attn_q.bias", "attn_k.bias", "attn_v.bias"};
    for (int i = 0; i < 3; ++i) {
      Tensor bias{1, sizes[i], {}};
      for (uint32_t j = 0; j < sizes[i]; ++j) bias.data.push_back(static_cast<float>(l * 1000 + i * 100 + j));
      c.tensors["blk." + std::to_string(l) + "." + names[i]] = bias;
    }
  }
  auto dtype_of = [](const std::string& name) { return name.find("bias") != std::string::npos ? "F32" : "BF16"; };
  ScratchDir dir;
  // No tie_word_embeddings and no lm_head: tied.
  WriteText(dir / "config.json", ConfigJson(c.config, "qwen2").dump());
  WriteFile(dir / "model.safetensors", SafetensorsBytes(HfTensors(c, dtype_of)));

  ExpectSameCheckpoint(host::LoadHuggingFace(dir.path()), Expected(c, dtype_of));
}

// --- bad input, on a tiny F32 model ---

struct HfFiles {
  json config;
  std::vector<StTensor> tensors;
};

HfFiles TinyHf() {
  const Checkpoint c = TinyCheckpoint(3, true);
  return {ConfigJson(c.config, "llama"), HfTensors(c, [](const std::string&) { return "F32"; })};
}

void Write(const ScratchDir& dir, const HfFiles& files, const std::function<void(json&)>& edit = nullptr) {
  WriteText(dir / "config.json", files.config.dump());
  WriteFile(dir / "model.safetensors", SafetensorsBytes(files.tensors, edit));
}

StTensor& Find(HfFiles& files, const std::string& name) {
  for (StTensor& t : files.tensors) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("test: no tensor " + name);
}

TEST(HuggingFaceErrors, TheTinyModelItselfLoads) {
  ScratchDir dir;
  Write(dir, TinyHf());
  EXPECT_EQ(host::LoadHuggingFace(dir.path()).tensors.size(), 2u + 9u * 2u);
}

TEST(HuggingFaceErrors, MalformedConfigJson) {
  ScratchDir dir;
  Write(dir, TinyHf());
  WriteText(dir / "config.json", "{\"model_type\": \"llama\",\n \"hidden_size\": 40,,}");
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "malformed JSON");
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "config.json");
}

TEST(HuggingFaceErrors, MissingConfigKey) {
  ScratchDir dir;
  HfFiles files = TinyHf();
  files.config.erase("hidden_size");
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "missing key 'hidden_size'");
}

TEST(HuggingFaceErrors, BadConfigValues) {
  ScratchDir dir;
  HfFiles files = TinyHf();
  files.config["model_type"] = "gpt2";
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "model_type");
  files = TinyHf();
  files.config["num_hidden_layers"] = -2;
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "num_hidden_layers");
  files = TinyHf();
  files.config["num_key_value_heads"] = 3;  // 4 heads do not share 3 kv heads
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "n_kv_heads");
}

TEST(HuggingFaceErrors, UnsupportedDtype) {
  ScratchDir dir;
  HfFiles files = TinyHf();
  StTensor& t = Find(files, "model.layers.1.mlp.up_proj.weight");
  t.dtype = "I64";
  t.bytes.resize(t.bytes.size() * 2);
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "dtype 'I64'");
}

TEST(HuggingFaceErrors, HeaderLengthBeyondFile) {
  ScratchDir dir;
  Write(dir, TinyHf());
  std::vector<uint8_t> bytes = ReadFile(dir / "model.safetensors");
  const uint64_t huge = bytes.size();  // the header cannot be as long as the whole file
  std::memcpy(bytes.data(), &huge, sizeof huge);
  WriteFile(dir / "model.safetensors", bytes);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "header length");
}

TEST(HuggingFaceErrors, ShapeMismatch) {
  ScratchDir dir;
  HfFiles files = TinyHf();
  StTensor& t = Find(files, "model.layers.0.mlp.up_proj.weight");
  t.shape = {72, 39};
  t.bytes.resize(72 * 39 * 4);
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); },
                   "tensor 'model.layers.0.mlp.up_proj.weight' has shape [72, 39], expected [72, 40]");
}

TEST(HuggingFaceErrors, DataOffsetsOutOfRange) {
  ScratchDir dir;
  Write(dir, TinyHf(), [](json& header) { header["model.norm.weight"]["data_offsets"] = {0, 1u << 30}; });
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "data_offsets");
  // Offsets inside the file that disagree with the shape.
  Write(dir, TinyHf(), [](json& header) { header["model.norm.weight"]["data_offsets"] = {0, 12}; });
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "bytes of data");
}

TEST(HuggingFaceErrors, MissingOrUnsupportedTensors) {
  ScratchDir dir;
  HfFiles files = TinyHf();
  std::erase_if(files.tensors, [](const StTensor& t) { return t.name == "model.layers.1.self_attn.v_proj.weight"; });
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); },
                   "missing tensor 'model.layers.1.self_attn.v_proj.weight'");

  // An attention_bias Llama also biases o_proj, which the engine lacks: a zero bias is dropped, others refused.
  files = TinyHf();
  files.config["attention_bias"] = true;
  files.tensors.push_back({"model.layers.0.self_attn.o_proj.bias", "F32", {40}, std::vector<uint8_t>(160, 0)});
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "missing tensor 'model.layers.0.self_attn.q_proj.bias'");
  files.config["attention_bias"] = false;
  Write(dir, files);
  EXPECT_NO_THROW(host::LoadHuggingFace(dir.path()));
  files.tensors.back().bytes = Encode(std::vector<float>(40, 0.5f), "F32");
  Write(dir, files);
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "not supported");

  fs::remove(dir / "model.safetensors");
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "model.safetensors.index.json");
}

TEST(HuggingFaceErrors, IndexMayNameOnlyFilesBesideIt) {
  ScratchDir dir;
  HfFiles files = TinyHf();
  WriteText(dir / "config.json", files.config.dump());
  json weight_map = json::object();
  for (const StTensor& t : files.tensors) weight_map[t.name] = "../model.safetensors";
  WriteText(dir / "model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
  ExpectInputError([&] { host::LoadHuggingFace(dir.path()); }, "not a file name");
}

}  // namespace
}  // namespace qmc::testing
