// HuggingFace checkpoints: a directory holding config.json and the weights in
// model.safetensors, or in shards that model.safetensors.index.json lists.
// Llama (SmolLM is one) and Qwen2. HF orders each head's q/k rows
// rotate-half; they are reordered to the canonical interleaved order.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>

#include "host/byte_reader.h"
#include "host/checkpoint.h"
#include "host/mapped_file.h"
#include "host/reader_support.h"
#include "host/rope_permutation.h"

namespace qmc::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// Canonical name -> HF name, for the tensors outside the layers and for a layer's suffix.
constexpr std::pair<const char*, const char*> kTopNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
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
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
// Biases HF Llama variants may carry (attention_bias also biases o_proj;
// mlp_bias) that the engine has no place for. Dropping them is exact only when
// they are zero; otherwise the checkpoint is refused rather than silently
// turned into a different model. The flag says the bias has hidden_dim entries.
constexpr std::pair<const char*, bool> kUnsupportedBiases[] = {{"self_attn.o_proj.bias", false},
                                                               {"mlp.gate_proj.bias", true},
                                                               {"mlp.up_proj.bias", true},
                                                               {"mlp.down_proj.bias", false}};

std::string LayerPrefix(uint32_t layer) { return "model.layers." + std::to_string(layer) + "."; }

std::string HfName(const std::string& canonical) {
  for (const auto& [ours, theirs] : kTopNames) {
    if (canonical == ours) return theirs;
  }
  const size_t dot = canonical.find('.', 4);  // canonical is "blk.<layer>.<suffix>"
  const std::string suffix = canonical.substr(dot + 1);
  for (const auto& [ours, theirs] : kLayerNames) {
    if (suffix == ours) return "model.layers." + canonical.substr(4, dot - 4) + "." + theirs;
  }
  throw std::logic_error("no HuggingFace name for tensor " + canonical);
}

// JSON library messages can quote input, which may hold line breaks.
std::string OneLine(std::string text) {
  for (char& ch : text) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return text;
}

json ParseJson(std::string_view text, const std::string& file) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(file + ": malformed JSON: " + OneLine(e.what()));
  }
}

json ReadJsonFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  json value = ParseJson(text.str(), path.string());
  if (!value.is_object()) throw InputError(path.string() + ": expected a JSON object");
  return value;
}

// config.json, with typed access by key; errors name the file and the key.
class JsonConfig {
 public:
  explicit JsonConfig(const fs::path& path) : file_(path.string()), json_(ReadJsonFile(path)) {}

  const std::string& file() const { return file_; }
  bool Has(const char* key) const { return Find(key) != nullptr; }

  uint32_t Dim(const char* key) const { return DimOr(key, 0); }
  // A positive integer; `fallback` (0: none, the key is required) when the key is absent or null.
  uint32_t DimOr(const char* key, uint32_t fallback) const {
    const json* value = Find(key);
    if (value == nullptr) {
      if (fallback == 0) Missing(key);
      return fallback;
    }
    if (!value->is_number_unsigned() || value->get<uint64_t>() == 0 || value->get<uint64_t>() > UINT32_MAX) {
      Fail("key '" + std::string(key) + "' is " + OneLine(value->dump()) + ", expected a positive integer");
    }
    return value->get<uint32_t>();
  }

  float Number(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr) Missing(key);
    return NumberOf(key, *value);
  }
  float NumberOr(const char* key, float fallback) const {
    const json* value = Find(key);
    return value == nullptr ? fallback : NumberOf(key, *value);
  }

  bool FlagOr(const char* key, bool fallback) const {
    const json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean())
      Fail("key '" + std::string(key) + "' is " + OneLine(value->dump()) + ", expected true or false");
    return value->get<bool>();
  }

  std::string String(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr) Missing(key);
    if (!value->is_string())
      Fail("key '" + std::string(key) + "' is " + OneLine(value->dump()) + ", expected a string");
    return value->get<std::string>();
  }

  [[noreturn]] void Fail(const std::string& message) const { throw InputError(file_ + ": " + message); }

 private:
  const json* Find(const char* key) const {
    const auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void Missing(const char* key) const { Fail("missing key '" + std::string(key) + "'"); }
  float NumberOf(const char* key, const json& value) const {
    if (!value.is_number() || !(std::fabs(value.get<double>()) <= std::numeric_limits<float>::max())) {
      Fail("key '" + std::string(key) + "' is " + OneLine(value.dump()) + ", expected a number");
    }
    return static_cast<float>(value.get<double>());
  }

  std::string file_;
  json json_;
};

struct SafetensorsEntry {
  std::string dtype;
  std::vector<uint64_t> shape;
  std::span<const uint8_t> data;  // inside the file: the header check saw to it
};

// One .safetensors file: u64 header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data, which the offsets index.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const fs::path& path) : file_(path) {
    ByteReader in(file_.bytes(), file_.name());
    const uint64_t header_length = in.Read<uint64_t>("the header length");
    if (header_length > in.remaining()) {
      in.Fail("header length " + std::to_string(header_length) + " exceeds the " + std::to_string(in.remaining()) +
              " bytes that follow it");
    }
    const std::span<const uint8_t> header_bytes = in.Bytes(header_length, "the header");
    const json header =
        ParseJson(std::string_view(reinterpret_cast<const char*>(header_bytes.data()), header_bytes.size()), name());
    if (!header.is_object()) in.Fail("the header is not a JSON object");
    const std::span<const uint8_t> data = file_.bytes().subspan(in.position());
    for (const auto& [tensor, entry] : header.items()) {
      if (tensor == "__metadata__") continue;
      const auto dtype = entry.find("dtype");
      const auto shape = entry.find("shape");
      const auto offsets = entry.find("data_offsets");
      const bool well_formed = entry.is_object() && dtype != entry.end() && dtype->is_string() &&
                               shape != entry.end() && shape->is_array() && offsets != entry.end() &&
                               offsets->is_array() && offsets->size() == 2 && (*offsets)[0].is_number_unsigned() &&
                               (*offsets)[1].is_number_unsigned();
      if (!well_formed) in.Fail("tensor '" + OneLine(tensor) + "' has a malformed header entry");
      SafetensorsEntry parsed{dtype->get<std::string>(), {}, {}};
      for (const json& extent : *shape) {
        if (!extent.is_number_unsigned()) in.Fail("tensor '" + OneLine(tensor) + "' has a malformed shape");
        parsed.shape.push_back(extent.get<uint64_t>());
      }
      const uint64_t begin = (*offsets)[0].get<uint64_t>();
      const uint64_t end = (*offsets)[1].get<uint64_t>();
      if (begin > end || end > data.size()) {
        in.Fail("tensor '" + OneLine(tensor) + "' has data_offsets [" + std::to_string(begin) + ", " +
                std::to_string(end) + "] outside the " + std::to_string(data.size()) + " data bytes");
      }
      parsed.data = data.subspan(begin, end - begin);
      entries_.emplace(tensor, std::move(parsed));
    }
  }

  const std::string& name() const { return file_.name(); }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }

 private:
  MappedFile file_;
  std::map<std::string, SafetensorsEntry> entries_;
};

// The weights of a checkpoint directory: one file, or the shards an index names.
class Weights {
 public:
  explicit Weights(const fs::path& directory) {
    std::error_code ec;
    if (fs::exists(directory / kSingleFile, ec)) {
      listing_ = (directory / kSingleFile).string();
      const SafetensorsFile& file = Open(directory, kSingleFile);
      for (const auto& [tensor, entry] : file.entries()) owner_.emplace(tensor, &file);
      return;
    }
    const fs::path index_path = directory / kIndexFile;
    if (!fs::exists(index_path, ec)) {
      throw InputError(directory.string() + ": no " + kSingleFile + " or " + kIndexFile);
    }
    listing_ = index_path.string();
    const json index = ReadJsonFile(index_path);
    const auto map = index.find("weight_map");
    if (map == index.end() || !map->is_object()) throw InputError(listing_ + ": missing key 'weight_map'");
    for (const auto& [tensor, shard] : map->items()) {
      const std::string shard_name = shard.is_string() ? shard.get<std::string>() : std::string();
      // A shard is a file beside the index, never a path that leads elsewhere.
      if (shard_name.empty() || fs::path(shard_name).filename() != shard_name || shard_name == "." ||
          shard_name == "..") {
        throw InputError(listing_ + ": weight_map entry for '" + OneLine(tensor) + "' is not a file name");
      }
      owner_.emplace(tensor, &Open(directory, shard_name));
    }
  }

  bool Has(const std::string& tensor) const { return owner_.count(tensor) != 0; }

  // The tensor `tensor`, checked against `spec` and decoded.
  Tensor Convert(const std::string& tensor, const TensorSpec& spec) const {
    const auto owner = owner_.find(tensor);
    if (owner == owner_.end()) throw InputError(listing_ + ": missing tensor '" + tensor + "'");
    const SafetensorsFile& file = *owner->second;
    const auto entry = file.entries().find(tensor);
    if (entry == file.entries().end()) {
      throw InputError(listing_ + ": lists tensor '" + tensor + "' in " + file.name() + ", which does not hold it");
    }
    const SafetensorsEntry& e = entry->second;
    ElementType type;
    if (e.dtype == "F32") {
      type = ElementType::kF32;
    } else if (e.dtype == "F16") {
      type = ElementType::kF16;
    } else if (e.dtype == "BF16") {
      type = ElementType::kBf16;
    } else {
      throw InputError(file.name() + ": tensor '" + tensor + "' has unsupported dtype '" + OneLine(e.dtype) +
                       "' (F32, F16 and BF16 are read)");
    }
    return ConvertTensor({tensor, e.shape, type, e.data}, spec, file.name());
  }

  const std::string& listing() const { return listing_; }

 private:
  const SafetensorsFile& Open(const fs::path& directory, const std::string& name) {
    return shards_.try_emplace(name, directory / name).first->second;
  }

  std::string listing_;  // the file that lists the tensors, for messages
  std::map<std::string, SafetensorsFile> shards_;
  std::map<std::string, const SafetensorsFile*> owner_;
};

// The model configuration config.json gives; the classifier is shared when
// tie_word_embeddings says so or when `lm_head_missing` (asked once the
// config's own keys have been read) says the weights have no lm_head.
image::ModelConfig ParseConfig(const JsonConfig& config, const std::function<bool()>& lm_head_missing) {
  image::ModelConfig c{};
  bool qkv_bias = false;
  const std::string model_type = config.String("model_type");
  if (model_type == "llama") {
    c.arch = static_cast<uint32_t>(image::Arch::kLlama);
    qkv_bias = config.FlagOr("attention_bias", false);
  } else if (model_type == "qwen2") {
    c.arch = static_cast<uint32_t>(image::Arch::kQwen2);
    qkv_bias = true;  // Qwen2 always has q/k/v biases
  } else {
    config.Fail("unsupported model_type '" + model_type + "' (llama and qwen2 are read)");
  }
  c.dim = config.Dim("hidden_size");
  c.hidden_dim = config.Dim("intermediate_size");
  c.n_layers = config.Dim("num_hidden_layers");
  c.n_heads = config.Dim("num_attention_heads");
  c.n_kv_heads = config.DimOr("num_key_value_heads", c.n_heads);
  if (c.dim % c.n_heads != 0 && !config.Has("head_dim")) {
    config.Fail("hidden_size is not a multiple of num_attention_heads and head_dim is not given");
  }
  c.head_dim = config.DimOr("head_dim", c.dim / c.n_heads);
  c.vocab_size = config.Dim("vocab_size");
  c.seq_len = config.Dim("max_position_embeddings");
  c.norm_eps = config.Number("rms_norm_eps");
  c.rope_theta = config.NumberOr("rope_theta", 10000.0f);

  // Tied checkpoints often leave lm_head out, whatever the config says.
  const bool no_lm_head = lm_head_missing();  // always asked: LoadHuggingFace opens the weights there
  const bool shared = config.FlagOr("tie_word_embeddings", false) || no_lm_head;
  c.flags = (shared ? image::kModelSharedClassifier : 0u) | (qkv_bias ? image::kModelQkvBias : 0u);
  CheckModelConfig(c, config.file());
  return c;
}

}  // namespace

image::ModelConfig LoadHuggingFaceConfig(const std::filesystem::path& config_json) {
  return ParseConfig(JsonConfig(config_json), [] { return false; });
}

Checkpoint LoadHuggingFace(const std::filesystem::path& directory) {
  const JsonConfig config(directory / "config.json");
  std::optional<Weights> weights;
  const image::ModelConfig c = ParseConfig(config, [&] {
    weights.emplace(directory);
    return !weights->Has("lm_head.weight");
  });

  for (uint32_t layer = 0; layer < c.n_layers; ++layer) {
    for (const auto& [suffix, hidden] : kUnsupportedBiases) {
      const std::string name = LayerPrefix(layer) + suffix;
      if (!weights->Has(name)) continue;
      const Tensor bias = weights->Convert(name, {name, 1, hidden ? c.hidden_dim : c.dim, false});
      if (std::any_of(bias.data.begin(), bias.data.end(), [](float b) { return b != 0.0f; })) {
        throw InputError(weights->listing() + ": tensor '" + name + "' is nonzero, and such biases are not supported");
      }
    }
  }

  Checkpoint checkpoint;
  checkpoint.format = "safetensors";
  checkpoint.config = c;
  for (const TensorSpec& spec : RequiredTensors(c)) {
    checkpoint.tensors[spec.name] = weights->Convert(HfName(spec.name), spec);
  }
  RotateHalfToInterleaved(checkpoint);
  return checkpoint;
}

}  // namespace qmc::host
