// HuggingFace checkpoints: a directory holding config.json and the weights in
// model.safetensors, or in shards that model.safetensors.index.json lists.
// Llama (SmolLM and Llama-3.2 are), Qwen2, Phi and Hymba. HF orders each
// head's rotated q/k rows rotate-half; they are reordered to the canonical
// interleaved order.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <sstream>
#include <string_view>

#include "common/model_tensors.h"
#include "host/atomic_file.h"
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

// Canonical name -> HF name, per family: the tensors outside the layers, and a layer's suffix.
struct NameTable {
  std::span<const std::pair<const char*, const char*>> top, layer;
};
constexpr std::pair<const char*, const char*> kLlamaTop[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
constexpr std::pair<const char*, const char*> kLlamaLayer[] = {
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
// transformers models/phi/modeling_phi.py.
constexpr std::pair<const char*, const char*> kPhiTop[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.final_layernorm.weight"},
    {"output_norm.bias", "model.final_layernorm.bias"},
    {"output.weight", "lm_head.weight"},
    {"output.bias", "lm_head.bias"},
};
constexpr std::pair<const char*, const char*> kPhiLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_norm.bias", "input_layernorm.bias"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.dense.weight"},
    {"attn_output.bias", "self_attn.dense.bias"},
    {"ffn_up.weight", "mlp.fc1.weight"},
    {"ffn_up.bias", "mlp.fc1.bias"},
    {"ffn_down.weight", "mlp.fc2.weight"},
    {"ffn_down.bias", "mlp.fc2.bias"},
};
// Hymba's modeling_hymba.py (HymbaForCausalLM with one expert and one SSM).
constexpr std::pair<const char*, const char*> kHymbaTop[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"meta_tokens.weight", "model.memory_tokens"},
    {"output_norm.weight", "model.final_layernorm.weight"},
    {"output.weight", "lm_head.weight"},
};
constexpr std::pair<const char*, const char*> kHymbaLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ssm_in.weight", "mamba.in_proj.weight"},
    {"ssm_conv1d.weight", "mamba.conv1d.weight"},
    {"ssm_conv1d.bias", "mamba.conv1d.bias"},
    {"ssm_x.weight", "mamba.x_proj.0.weight"},
    {"ssm_dt_norm.weight", "mamba.dt_layernorm.weight"},
    {"ssm_b_norm.weight", "mamba.B_layernorm.weight"},
    {"ssm_c_norm.weight", "mamba.C_layernorm.weight"},
    {"ssm_dt.weight", "mamba.dt_proj.0.weight"},
    {"ssm_dt.bias", "mamba.dt_proj.0.bias"},
    {"ssm_a_log", "mamba.A_log.0"},
    {"ssm_d", "mamba.D.0"},
    {"attn_out_norm.weight", "mamba.pre_avg_layernorm1.weight"},
    {"ssm_out_norm.weight", "mamba.pre_avg_layernorm2.weight"},
    {"ssm_out.weight", "mamba.out_proj.weight"},
    {"ffn_norm.weight", "pre_moe_layernorm.weight"},
    {"ffn_gate.weight", "moe.experts.0.gate_proj.weight"},
    {"ffn_up.weight", "moe.experts.0.up_proj.weight"},
    {"ffn_down.weight", "moe.experts.0.down_proj.weight"},
};

NameTable NamesOf(image::Arch arch) {
  switch (arch) {
    case image::Arch::kPhi: return {kPhiTop, kPhiLayer};
    case image::Arch::kHymba: return {kHymbaTop, kHymbaLayer};
    default: return {kLlamaTop, kLlamaLayer};
  }
}

// Biases HF Llama variants may carry (attention_bias also biases o_proj;
// mlp_bias) that the engine has no place for. Dropping them is exact only when
// they are zero; otherwise the checkpoint is refused rather than silently
// turned into a different model. The flag says the bias has hidden_dim entries.
constexpr std::pair<const char*, bool> kUnsupportedBiases[] = {{"self_attn.o_proj.bias", false},
                                                               {"mlp.gate_proj.bias", true},
                                                               {"mlp.up_proj.bias", true},
                                                               {"mlp.down_proj.bias", false}};

std::string LayerPrefix(uint32_t layer) { return "model.layers." + std::to_string(layer) + "."; }

std::string HfName(image::Arch arch, const std::string& canonical) {
  const NameTable names = NamesOf(arch);
  for (const auto& [ours, theirs] : names.top) {
    if (canonical == ours) return theirs;
  }
  const size_t dot = canonical.find('.', 4);  // canonical is "blk.<layer>.<suffix>"
  const std::string suffix = canonical.substr(dot + 1);
  for (const auto& [ours, theirs] : names.layer) {
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
  if (!in) throw IoError(path.string() + ": cannot open: " + std::strerror(errno));
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

  std::string StringOr(const char* key, const std::string& fallback) const {
    return Find(key) == nullptr ? fallback : String(key);
  }

  // An integer of any sign (Hymba marks "unset" with -1).
  int64_t IntOr(const char* key, int64_t fallback) const {
    const json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer()) Fail("key '" + std::string(key) + "' is " + OneLine(value->dump()) + ", expected an integer");
    return value->get<int64_t>();
  }

  // A list of layer indices below `layers`.
  std::vector<uint32_t> IndexList(const json& value, const char* key, uint32_t layers) const {
    if (!value.is_array()) Fail("key '" + std::string(key) + "' holds " + OneLine(value.dump()) + ", expected a list of layers");
    std::vector<uint32_t> out;
    for (const json& index : value) {
      if (!index.is_number_unsigned() || index.get<uint64_t>() >= layers) {
        Fail("key '" + std::string(key) + "' names layer " + OneLine(index.dump()) + ", not one of the " +
             std::to_string(layers) + " layers");
      }
      out.push_back(index.get<uint32_t>());
    }
    return out;
  }
  std::vector<uint32_t> Indices(const char* key, uint32_t layers) const {
    const json* value = Find(key);
    if (value == nullptr) Missing(key);
    return IndexList(*value, key, layers);
  }

  // The key's value, nullptr when absent or null.
  const json* Find(const char* key) const {
    const auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }

  [[noreturn]] void Fail(const std::string& message) const { throw InputError(file_ + ": " + message); }

 private:
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

  // The first tensor whose name contains `part` ("" when none does).
  std::string NameContaining(std::string_view part) const {
    for (const auto& [tensor, file] : owner_) {
      if (tensor.find(part) != std::string::npos) return tensor;
    }
    return "";
  }

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
    std::vector<uint64_t> shape = e.shape;
    // Hymba's depthwise conv1d weight is [channels, 1, width]: read as channels x width.
    if (spec.name.ends_with("ssm_conv1d.weight") && shape.size() == 3 && shape[1] == 1) shape.erase(shape.begin() + 1);
    return ConvertTensor({tensor, shape, type, e.data}, spec, file.name());
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

// RoPE scaling as config.json's rope_scaling gives it: none, or llama3.
// Any other kind is refused: running it unscaled would be another model.
void ParseRopeScaling(const JsonConfig& config, image::ModelDetail& d) {
  const json* scaling = config.Find("rope_scaling");
  if (scaling == nullptr) return;
  if (!scaling->is_object()) config.Fail("key 'rope_scaling' is " + OneLine(scaling->dump()) + ", expected an object");
  const auto type = scaling->find(scaling->contains("rope_type") ? "rope_type" : "type");
  const std::string kind = type != scaling->end() && type->is_string() ? type->get<std::string>() : "";
  if (kind == "default") return;  // transformers' name for no scaling
  if (kind.empty()) config.Fail("rope_scaling has no rope_type (llama3 is supported)");
  if (kind != "llama3") {
    config.Fail("rope_scaling type '" + OneLine(kind) + "' is not supported (llama3 is; others are refused, not ignored)");
  }
  auto number = [&](const char* key) {
    const auto it = scaling->find(key);
    if (it == scaling->end() || !it->is_number()) config.Fail(std::string("rope_scaling needs a number '") + key + "'");
    return it->get<double>();
  };
  d.rope_scaling = static_cast<uint32_t>(image::RopeScaling::kLlama3);
  d.rope_factor = static_cast<float>(number("factor"));
  d.rope_low_freq_factor = static_cast<float>(number("low_freq_factor"));
  d.rope_high_freq_factor = static_cast<float>(number("high_freq_factor"));
  const double original = number("original_max_position_embeddings");
  if (!(original >= 1 && original <= UINT32_MAX)) config.Fail("rope_scaling original_max_position_embeddings is out of range");
  d.rope_original_context = static_cast<uint32_t>(original);
}

// Microsoft's remote-code Phi checkpoints fuse q, k and v into mixer.Wqkv.
constexpr const char* kOldPhiLayout =
    "Phi's pre-transformers-4.37 layout (fused mixer.Wqkv); convert it with transformers' "
    "models/phi/convert_phi_weights_to_hf.py first";

// A config value that must hold for the engine to run the model as its reference does.
void Require(const JsonConfig& config, bool holds, const std::string& what) {
  if (!holds) config.Fail(what + " is not supported");
}

// Phi-1.5 (transformers PhiForCausalLM): LayerNorm, parallel attention and
// MLP, partial rotary, gelu_new, biases everywhere.
void ParsePhi(const JsonConfig& config, image::ModelConfig& c, image::ModelDetail& d) {
  c.norm_eps = config.Number("layer_norm_eps");
  Require(config, config.String("hidden_act") == "gelu_new", "hidden_act other than gelu_new");
  Require(config, !config.FlagOr("qk_layernorm", false), "qk_layernorm");
  const float partial = config.NumberOr("partial_rotary_factor", 1.0f);
  const auto rope_dims = static_cast<uint32_t>(static_cast<float>(c.head_dim) * partial);
  if (!(partial > 0.0f && partial <= 1.0f) || rope_dims < 2 || rope_dims % 2 != 0) {
    config.Fail("partial_rotary_factor does not give an even number of rotated dims");
  }
  d.rope_dims = rope_dims;
}

// Hymba (its remote modeling_hymba.py): attention heads and a Mamba SSM fed
// by one input projection, meta tokens, sliding windows, KV sharing, "ntk" RoPE.
void ParseHymba(const JsonConfig& config, image::ModelConfig& c, image::ModelDetail& d) {
  c.norm_eps = config.Number("rms_norm_eps");
  Require(config, config.String("hidden_act") == "silu" && config.String("mlp_hidden_act") == "silu",
          "an activation other than silu");
  Require(config, config.IntOr("num_mamba", 1) == 1 && config.IntOr("num_experts", 1) == 1, "more than one SSM or expert");
  Require(config, config.IntOr("attn_hidden_size", -1) == -1 && config.IntOr("kq_head_dim", -1) == -1,
          "attn_hidden_size or kq_head_dim");
  Require(config, config.StringOr("kq_norm", "none") == "none", "kq_norm");
  Require(config, config.IntOr("memory_tokens_interspersed_every", 0) == 0, "interspersed memory tokens");
  Require(config, !config.FlagOr("kv_weight_reuse", false), "kv_weight_reuse");
  Require(config, config.IntOr("kv_reuse_every_i_layer", -1) == -1, "kv_reuse_every_i_layer");
  Require(config, config.FlagOr("mamba_inner_layernorms", true) && config.FlagOr("mamba_conv_bias", true) &&
                      !config.FlagOr("mamba_proj_bias", false),
          "a Mamba variant without inner norms or conv bias, or with projection biases");
  Require(config, config.FlagOr("rope", true) && config.StringOr("rope_type", "ntk") == "ntk", "a rope_type other than ntk");
  d.meta_tokens = config.DimOr("num_memory_tokens", 0);
  d.ssm_inner = config.Dim("mamba_expand") * c.dim;
  // HymbaBlock sets v_head_dim to d_inner / heads, whatever the config says.
  Require(config, d.ssm_inner % c.n_heads == 0, "a d_inner that is not a multiple of the heads");
  d.value_head_dim = d.ssm_inner / c.n_heads;
  // seq_len counts the positions a sequence may use; the meta tokens take
  // the first positions of the model's maximum (common/engine.h).
  Require(config, c.seq_len > d.meta_tokens, "max_position_embeddings not past the meta tokens");
  c.seq_len -= d.meta_tokens;
  d.ssm_state = config.Dim("mamba_d_state");
  d.ssm_conv = config.Dim("mamba_d_conv");
  d.ssm_dt_rank = config.Dim("mamba_dt_rank");
  d.attn_window = config.Dim("sliding_window");
  // "ntk": the base grows by (2 · context / original − 1)^(d / (d − 2)).
  const double scale = 2.0 * config.Dim("max_position_embeddings") / config.Dim("orig_max_position_embeddings") - 1.0;
  Require(config, scale >= 1.0 && c.head_dim > 2, "an ntk RoPE that shrinks the base");
  c.rope_theta = static_cast<float>(c.rope_theta * std::pow(scale, c.head_dim / (c.head_dim - 2.0)));
  for (uint32_t l = 0; l < c.n_layers && l < image::kMaxLayers; ++l) d.layer_flags[l] = 0;
  for (uint32_t layer : config.Indices("global_attn_idx", c.n_layers)) d.layer_flags[layer] = image::kLayerGlobalAttention;
  const json* groups = config.Find("kv_reuse_group");
  if (groups != nullptr) {
    if (!groups->is_array()) config.Fail("key 'kv_reuse_group' is not a list of layer lists");
    for (const json& group : *groups) {
      std::vector<uint32_t> layers = config.IndexList(group, "kv_reuse_group", c.n_layers);
      if (layers.size() < 2 || !std::is_sorted(layers.begin(), layers.end())) {
        config.Fail("a kv_reuse_group entry is not an ascending list of two or more layers");
      }
      for (uint32_t layer : layers) d.kv_source[layer] = static_cast<uint8_t>(layers.front());
    }
  }
  const json* layer_types = config.Find("layer_type");
  if (layer_types != nullptr) {
    for (const json& type : *layer_types) Require(config, type == "h", "a layer_type other than \"h\" (hybrid)");
  }
  const json* conv_dims = config.Find("conv_dim");
  if (conv_dims != nullptr && conv_dims->is_object()) {
    for (const auto& [layer, dim] : conv_dims->items()) {
      Require(config, dim.is_number_unsigned() && dim.get<uint64_t>() == d.ssm_inner, "a conv_dim other than d_inner");
    }
  }
}

// The model config.json describes; the classifier is shared when
// tie_word_embeddings says so or when `lm_head_missing` (asked once the
// config's own keys have been read) says the weights have no lm_head.
ModelSpec ParseConfig(const JsonConfig& config, const std::function<bool()>& lm_head_missing) {
  image::ModelConfig c{};
  bool qkv_bias = false;
  const std::string model_type = config.String("model_type");
  if (model_type == "llama") {
    c.arch = static_cast<uint32_t>(image::Arch::kLlama);
    qkv_bias = config.FlagOr("attention_bias", false);
  } else if (model_type == "qwen2") {
    c.arch = static_cast<uint32_t>(image::Arch::kQwen2);
    qkv_bias = true;  // Qwen2 always has q/k/v biases
    Require(config, !config.FlagOr("use_sliding_window", false), "use_sliding_window");
  } else if (model_type == "phi") {
    c.arch = static_cast<uint32_t>(image::Arch::kPhi);
  } else if (model_type == "hymba") {
    c.arch = static_cast<uint32_t>(image::Arch::kHymba);
  } else if (model_type == "phi-msft" || model_type == "mixformer-sequential") {
    config.Fail("model_type '" + model_type + "' is " + kOldPhiLayout);
  } else {
    config.Fail("unsupported model_type '" + model_type + "' (llama, qwen2, phi and hymba are read)");
  }
  c.dim = config.Dim("hidden_size");
  c.hidden_dim = config.Dim("intermediate_size");
  c.n_layers = config.Dim("num_hidden_layers");
  if (c.n_layers > image::kMaxLayers) config.Fail("more than 128 layers");
  c.n_heads = config.Dim("num_attention_heads");
  c.n_kv_heads = config.DimOr("num_key_value_heads", c.n_heads);
  if (c.dim % c.n_heads != 0 && !config.Has("head_dim")) {
    config.Fail("hidden_size is not a multiple of num_attention_heads and head_dim is not given");
  }
  c.head_dim = config.DimOr("head_dim", c.dim / c.n_heads);
  c.vocab_size = config.Dim("vocab_size");
  c.seq_len = config.Dim("max_position_embeddings");
  c.rope_theta = config.NumberOr("rope_theta", 10000.0f);
  image::ModelDetail d = image::DefaultDetail(c);
  switch (static_cast<image::Arch>(c.arch)) {
    case image::Arch::kLlama:
    case image::Arch::kQwen2: c.norm_eps = config.Number("rms_norm_eps"); break;
    case image::Arch::kPhi: ParsePhi(config, c, d); break;
    case image::Arch::kHymba: ParseHymba(config, c, d); break;
  }
  ParseRopeScaling(config, d);

  // Tied checkpoints often leave lm_head out, whatever the config says.
  const bool no_lm_head = lm_head_missing();  // always asked: LoadHuggingFace opens the weights there
  const bool shared = config.FlagOr("tie_word_embeddings", false) || no_lm_head;
  c.flags = (shared ? image::kModelSharedClassifier : 0u) | (qkv_bias ? image::kModelQkvBias : 0u);
  CheckModelConfig(c, config.file());
  const Status status = image::ValidateModelDetail(c, d);
  if (!status.ok()) config.Fail(status.what);
  return {c, d};
}

}  // namespace

ModelSpec LoadHuggingFaceConfig(const std::filesystem::path& config_json) {
  return ParseConfig(JsonConfig(config_json), [] { return false; });
}

Checkpoint LoadHuggingFace(const std::filesystem::path& directory) {
  const JsonConfig config(directory / "config.json");
  std::optional<Weights> weights;
  const ModelSpec spec = ParseConfig(config, [&] {
    weights.emplace(directory);
    return !weights->Has("lm_head.weight");
  });
  const image::ModelConfig& c = spec.config;
  if (const std::string fused = weights->NameContaining(".mixer.Wqkv."); !fused.empty()) {
    throw InputError(weights->listing() + ": tensor '" + OneLine(fused) + "' is " + kOldPhiLayout);
  }

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
  checkpoint.detail = spec.detail;
  for (const TensorSpec& tensor : RequiredTensors(c, spec.detail)) {
    checkpoint.tensors[tensor.name] = weights->Convert(HfName(static_cast<image::Arch>(c.arch), tensor.name), tensor);
  }
  if (c.arch == static_cast<uint32_t>(image::Arch::kHymba)) {
    HymbaInProjToInterleaved(checkpoint);
  } else {
    RotateHalfToInterleaved(checkpoint);
  }
  return checkpoint;
}

}  // namespace qmc::host
