#include "host/model_shapes.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace qmc::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// config.json with typed access; errors name the file and the key.
class ConfigFile {
 public:
  explicit ConfigFile(const fs::path& path) : file_(path.string()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(file_ + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    try {
      json_ = json::parse(text.str());
    } catch (const json::exception&) {
      throw InputError(file_ + ": malformed JSON");
    }
    if (!json_.is_object()) throw InputError(file_ + ": expected a JSON object");
  }

  const std::string& file() const { return file_; }
  const json* Find(const char* key) const {
    const auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string String(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr || !v->is_string()) Fail(key, "a string");
    return v->get<std::string>();
  }
  // A positive integer; `fallback` (0: required) when absent, null or, with
  // `negative_means_default`, negative (Hymba writes -1 for "derive it").
  uint32_t Dim(const char* key, uint32_t fallback = 0, bool negative_means_default = false) const {
    const json* v = Find(key);
    if (v != nullptr && negative_means_default && v->is_number_integer() && v->get<int64_t>() < 0) v = nullptr;
    if (v == nullptr) {
      if (fallback == 0) Fail(key, "a positive integer");
      return fallback;
    }
    if (!v->is_number_unsigned() || v->get<uint64_t>() == 0 || v->get<uint64_t>() > (1u << 24)) {
      Fail(key, "a positive integer");
    }
    return v->get<uint32_t>();
  }
  double Number(const char* key, double fallback) const {
    const json* v = Find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number()) Fail(key, "a number");
    return v->get<double>();
  }
  bool Flag(const char* key, bool fallback) const {
    const json* v = Find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) Fail(key, "true or false");
    return v->get<bool>();
  }
  // A list of layer indices below `layers`.
  std::vector<uint32_t> Indices(const json& v, const char* key, uint32_t layers) const {
    if (!v.is_array()) Fail(key, "a list of layer indices");
    std::vector<uint32_t> out;
    for (const json& i : v) {
      if (!i.is_number_unsigned() || i.get<uint64_t>() >= layers) Fail(key, "a list of layer indices");
      out.push_back(i.get<uint32_t>());
    }
    return out;
  }
  [[noreturn]] void Fail(const char* key, const char* expected) const {
    const json* v = Find(key);
    throw InputError(file_ + ": key '" + key + "' is " + (v == nullptr ? std::string("missing") : v->dump()) +
                     ", expected " + expected);
  }

 private:
  std::string file_;
  json json_;
};

std::string Layer(uint32_t l, const char* suffix) { return "blk." + std::to_string(l) + "." + suffix; }

void Add(ModelShape& s, std::string name, uint32_t rows, uint32_t cols, TensorUse use) {
  const bool matrix = use == TensorUse::kMatrix || use == TensorUse::kEmbedding;
  s.tensors.push_back({{std::move(name), rows, cols, matrix}, use});
}
void Vector(ModelShape& s, std::string name, uint32_t n) { Add(s, std::move(name), 1, n, TensorUse::kVector); }

// Phi-1.5 (PhiForCausalLM): one LayerNorm feeds a parallel attention and
// MLP block; q/k/v/dense and fc1/fc2 have biases; lm_head is separate, with a bias.
ModelShape PhiShape(const ConfigFile& c) {
  ModelShape s;
  s.family = "phi";
  const uint32_t dim = c.Dim("hidden_size"), hidden = c.Dim("intermediate_size"), layers = c.Dim("num_hidden_layers");
  const uint32_t heads = c.Dim("num_attention_heads"), kv_heads = c.Dim("num_key_value_heads", heads);
  const uint32_t vocab = c.Dim("vocab_size");
  if (dim % heads != 0) c.Fail("hidden_size", "a multiple of num_attention_heads");
  const uint32_t head_dim = dim / heads;
  s.tied_classifier = c.Flag("tie_word_embeddings", false);
  Add(s, "token_embd.weight", vocab, dim, TensorUse::kEmbedding);
  for (uint32_t l = 0; l < layers; ++l) {
    Vector(s, Layer(l, "attn_norm.weight"), dim);
    Vector(s, Layer(l, "attn_norm.bias"), dim);
    Add(s, Layer(l, "attn_q.weight"), heads * head_dim, dim, TensorUse::kMatrix);
    Vector(s, Layer(l, "attn_q.bias"), heads * head_dim);
    Add(s, Layer(l, "attn_k.weight"), kv_heads * head_dim, dim, TensorUse::kMatrix);
    Vector(s, Layer(l, "attn_k.bias"), kv_heads * head_dim);
    Add(s, Layer(l, "attn_v.weight"), kv_heads * head_dim, dim, TensorUse::kMatrix);
    Vector(s, Layer(l, "attn_v.bias"), kv_heads * head_dim);
    Add(s, Layer(l, "attn_output.weight"), dim, heads * head_dim, TensorUse::kMatrix);
    Vector(s, Layer(l, "attn_output.bias"), dim);
    Add(s, Layer(l, "ffn_up.weight"), hidden, dim, TensorUse::kMatrix);  // fc1
    Vector(s, Layer(l, "ffn_up.bias"), hidden);
    Add(s, Layer(l, "ffn_down.weight"), dim, hidden, TensorUse::kMatrix);  // fc2
    Vector(s, Layer(l, "ffn_down.bias"), dim);
    s.attention.push_back({kv_heads, head_dim, head_dim, true, 0});
  }
  Vector(s, "output_norm.weight", dim);
  Vector(s, "output_norm.bias", dim);
  if (!s.tied_classifier) Add(s, "output.weight", vocab, dim, TensorUse::kMatrix);
  Vector(s, "output.bias", vocab);
  s.max_positions = c.Dim("max_position_embeddings");
  s.vocab_size = vocab;
  return s;
}

// Hymba (HymbaForCausalLM, modeling_hymba.py): per layer one input
// projection feeds attention heads and a Mamba SSM in parallel; layers that
// reuse another layer's KV cache project no k, v.
ModelShape HymbaShape(const ConfigFile& c) {
  ModelShape s;
  s.family = "hymba";
  const uint32_t dim = c.Dim("hidden_size"), ffn = c.Dim("intermediate_size"), layers = c.Dim("num_hidden_layers");
  const uint32_t heads = c.Dim("num_attention_heads"), kv_heads = c.Dim("num_key_value_heads", heads);
  const uint32_t vocab = c.Dim("vocab_size");
  const uint32_t expand = c.Dim("mamba_expand", 2), d_state = c.Dim("mamba_d_state", 16);
  const uint32_t d_conv = c.Dim("mamba_d_conv", 4), dt_rank = c.Dim("mamba_dt_rank");
  const uint32_t attn_hidden = c.Dim("attn_hidden_size", dim, true);
  const uint32_t inner = expand * dim;
  if (attn_hidden % heads != 0 || inner % heads != 0 || (kv_heads * attn_hidden) % heads != 0) {
    c.Fail("num_attention_heads", "a divisor of the attention and SSM widths");
  }
  const uint32_t head_dim = attn_hidden / heads;          // q, k per head (64)
  const uint32_t v_head_dim = inner / heads;              // values per head (128)
  const uint32_t k_hidden = kv_heads * attn_hidden / heads;  // 320
  const uint32_t v_hidden = k_hidden * expand;               // 640
  const bool proj_bias = c.Flag("mamba_proj_bias", false), conv_bias = c.Flag("mamba_conv_bias", true);
  const bool inner_norms = c.Flag("mamba_inner_layernorms", true);
  const bool gated_mlp = !c.Find("mlp_hidden_act") || c.String("mlp_hidden_act") == "silu";

  // Layers after the first of a kv_reuse_group read that layer's cache.
  std::vector<bool> owns(layers, true);
  if (const json* groups = c.Find("kv_reuse_group")) {
    if (!groups->is_array()) c.Fail("kv_reuse_group", "a list of layer groups");
    for (const json& group : *groups) {
      const std::vector<uint32_t> members = c.Indices(group, "kv_reuse_group", layers);
      for (size_t i = 1; i < members.size(); ++i) owns[members[i]] = false;
    }
  }
  std::set<uint32_t> global;
  if (const json* g = c.Find("global_attn_idx")) {
    for (uint32_t l : c.Indices(*g, "global_attn_idx", layers)) global.insert(l);
  }
  const uint32_t window = c.Find("sliding_window") ? c.Dim("sliding_window") : 0;

  s.tied_classifier = c.Flag("tie_word_embeddings", true);
  Add(s, "token_embd.weight", vocab, dim, TensorUse::kEmbedding);
  s.prefix_tokens = c.Find("num_memory_tokens") ? static_cast<uint32_t>(c.Number("num_memory_tokens", 0)) : 0;
  if (s.prefix_tokens > 0) Add(s, "memory_tokens", s.prefix_tokens, dim, TensorUse::kPrefix);
  for (uint32_t l = 0; l < layers; ++l) {
    const uint32_t latent = attn_hidden + (owns[l] ? k_hidden + v_hidden : 0) + inner;
    Vector(s, Layer(l, "attn_norm.weight"), dim);
    Add(s, Layer(l, "in_proj.weight"), latent + inner, dim, TensorUse::kMatrix);
    if (proj_bias) Vector(s, Layer(l, "in_proj.bias"), latent + inner);
    Add(s, Layer(l, "ssm_conv1d.weight"), inner, d_conv, TensorUse::kVector);  // depthwise taps, not a matvec
    if (conv_bias) Vector(s, Layer(l, "ssm_conv1d.bias"), inner);
    Add(s, Layer(l, "ssm_x_proj.weight"), dt_rank + 2 * d_state, inner, TensorUse::kMatrix);
    Add(s, Layer(l, "ssm_dt_proj.weight"), inner, dt_rank, TensorUse::kMatrix);
    Vector(s, Layer(l, "ssm_dt_proj.bias"), inner);
    Add(s, Layer(l, "ssm_a_log"), inner, d_state, TensorUse::kVector);
    Vector(s, Layer(l, "ssm_d"), inner);
    if (inner_norms) {
      Vector(s, Layer(l, "ssm_dt_norm.weight"), dt_rank);
      Vector(s, Layer(l, "ssm_b_norm.weight"), d_state);
      Vector(s, Layer(l, "ssm_c_norm.weight"), d_state);
    }
    Vector(s, Layer(l, "attn_fuse_norm1.weight"), inner);
    Vector(s, Layer(l, "attn_fuse_norm2.weight"), inner);
    Add(s, Layer(l, "out_proj.weight"), dim, inner, TensorUse::kMatrix);
    if (proj_bias) Vector(s, Layer(l, "out_proj.bias"), dim);
    Vector(s, Layer(l, "ffn_norm.weight"), dim);
    if (gated_mlp) Add(s, Layer(l, "ffn_gate.weight"), ffn, dim, TensorUse::kMatrix);
    Add(s, Layer(l, "ffn_up.weight"), ffn, dim, TensorUse::kMatrix);
    Add(s, Layer(l, "ffn_down.weight"), dim, ffn, TensorUse::kMatrix);
    s.attention.push_back({kv_heads, head_dim, v_head_dim, static_cast<bool>(owns[l]),
                           global.count(l) != 0 ? 0u : window});
    s.state_elements += static_cast<uint64_t>(inner) * (d_conv - 1) + static_cast<uint64_t>(inner) * d_state;
  }
  Vector(s, "output_norm.weight", dim);
  if (!s.tied_classifier) Add(s, "output.weight", vocab, dim, TensorUse::kMatrix);
  s.max_positions = c.Dim("max_position_embeddings");
  s.vocab_size = vocab;
  return s;
}

ModelShape FromConfigJson(const fs::path& file) {
  const ConfigFile c(file);
  const std::string type = c.String("model_type");
  ModelShape s;
  if (type == "llama" || type == "qwen2") {
    s = ShapeOfConfig(LoadHuggingFaceConfig(file));
  } else if (type == "phi") {
    s = PhiShape(c);
  } else if (type == "hymba") {
    s = HymbaShape(c);
  } else {
    throw InputError(file.string() + ": key 'model_type' is \"" + type + "\", expected llama, qwen2, phi or hymba");
  }
  s.source = file.string();
  return s;
}

}  // namespace

uint64_t ModelShape::MatrixWeights() const {
  uint64_t n = 0;
  for (const ShapeTensor& t : tensors) {
    if (t.spec.is_matrix) n += static_cast<uint64_t>(t.spec.rows) * t.spec.cols;
  }
  return n;
}

ModelShape ShapeOfConfig(const image::ModelConfig& config) {
  ModelShape s;
  s.family = config.arch == static_cast<uint32_t>(image::Arch::kQwen2) ? "qwen2" : "llama";
  s.config = config;
  s.tied_classifier = (config.flags & image::kModelSharedClassifier) != 0;
  for (const TensorSpec& spec : RequiredTensors(config)) {
    const TensorUse use = spec.name == "token_embd.weight" ? TensorUse::kEmbedding
                          : spec.is_matrix                 ? TensorUse::kMatrix
                                                           : TensorUse::kVector;
    s.tensors.push_back({spec, use});
  }
  for (uint32_t l = 0; l < config.n_layers; ++l) {
    s.attention.push_back({config.n_kv_heads, config.head_dim, config.head_dim, true, 0});
  }
  s.max_positions = config.seq_len;
  s.vocab_size = config.vocab_size;
  return s;
}

ModelShape LoadModelShape(const fs::path& input) {
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    if (!fs::exists(input / "config.json")) throw InputError(input.string() + ": no config.json in the directory");
    return FromConfigJson(input / "config.json");
  }
  if (input.extension() == ".json") return FromConfigJson(input);
  // A checkpoint file: its configuration and tokenizer (the weights are read, then dropped).
  Checkpoint checkpoint = LoadCheckpoint(input);
  ModelShape s = ShapeOfConfig(checkpoint.config);
  s.source = input.string();
  s.tokenizer = std::move(checkpoint.tokenizer);
  return s;
}

}  // namespace qmc::host
