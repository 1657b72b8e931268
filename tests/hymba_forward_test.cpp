// Hymba end to end: a tiny random Hymba written as a HuggingFace directory
// (config.json with the real config's keys), loaded, packed and run by the
// engine, against a decode step written plainly here from modeling_hymba.py
// (HymbaBlock's cached path, HymbaFlexAttention's cache truncation and KV
// reuse), causal_conv1d_update and mamba_ssm's selective_state_update, on the
// HF-named tensors in HF's rotate-half layout, sharing no code with common/
// or the loader's row reordering. Then configs `qmc pack` must refuse, and
// the real model's KV and state bytes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "common/model_tensors.h"
#include "host/checkpoint.h"
#include "host/pack.h"
#include "host/pack_presets.h"
#include "tests/cli_runner.h"
#include "tests/hf_directory.h"

namespace qmc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Weights = std::map<std::string, std::vector<float>>;  // HF name -> row-major values

// Logits reach ~10; f32 summation order moves them by ~1e-5, a wrong
// window, meta token or state by 1e-2 and more.
constexpr float kTolerance = 1e-4f;
constexpr int kPositions = 80;

// A Hymba in miniature: GQA 4/2 with 6-dim q/k heads and 12-dim value heads
// (d_inner 48 / 4 heads); global layers 0 and 5; layers 1, 2, 3 share layer
// 1's KV cache and layer 4 has its own, all four with a window of 8 past 4
// meta tokens; dt_rank 5, d_state 4, a conv of width 4.
struct Spec {
  int dim = 24, hidden = 40, layers = 6, heads = 4, kv_heads = 2, vocab = 64;
  int meta = 4, window = 8, max_positions = 128, original_max_positions = 64;
  int expand = 2, d_state = 4, d_conv = 4, dt_rank = 5;
  float theta = 10000.0f, eps = 1e-5f;
  std::vector<int> global = {0, 5};
  std::vector<std::vector<int>> groups = {{1, 2, 3}};

  int head_dim() const { return dim / heads; }
  int inner() const { return expand * dim; }
  int value_head_dim() const { return inner() / heads; }  // HymbaBlock's v_head_dim
  bool IsGlobal(int l) const { return std::count(global.begin(), global.end(), l) != 0; }
  // The layer whose K/V layer l attends over: the first of its kv_reuse_group.
  int Producer(int l) const {
    for (const std::vector<int>& g : groups) {
      if (std::count(g.begin(), g.end(), l) != 0) return g.front();
    }
    return l;
  }
  bool OwnsKv(int l) const { return Producer(l) == l; }
  int InProjRows(int l) const {
    return dim + (OwnsKv(l) ? kv_heads * head_dim() + kv_heads * value_head_dim() : 0) + 2 * inner();
  }
};

// Every key of Hymba-1.5B-Base's config.json, sized down.
json ConfigJson(const Spec& s) {
  json conv_dim = json::object();
  json layer_type = json::array();
  for (int l = 0; l < s.layers; ++l) {
    conv_dim[std::to_string(l)] = s.inner();
    layer_type.push_back("h");
  }
  return {{"architectures", {"HymbaForCausalLM"}},
          {"attention_dropout", 0.0},
          {"attn_hidden_size", -1},
          {"attn_implementation", "flex"},
          {"attn_implementation_new", "flex"},
          {"auto_map",
           {{"AutoConfig", "configuration_hymba.HymbaConfig"},
            {"AutoModelForCausalLM", "modeling_hymba.HymbaForCausalLM"}}},
          {"bos_token_id", 1},
          {"calc_logits_for_entire_prompt", false},
          {"conv_dim", conv_dim},
          {"eos_token_id", 2},
          {"global_attn_idx", s.global},
          {"hidden_act", "silu"},
          {"hidden_size", s.dim},
          {"initializer_range", 0.02},
          {"intermediate_size", s.hidden},
          {"kq_head_dim", -1},
          {"kq_norm", "none"},
          {"kv_reuse_every_i_layer", -1},
          {"kv_reuse_group", s.groups},
          {"kv_weight_reuse", false},
          {"layer_type", layer_type},
          {"mamba_conv_bias", true},
          {"mamba_d_conv", s.d_conv},
          {"mamba_d_state", s.d_state},
          {"mamba_dt_rank", s.dt_rank},
          {"mamba_expand", s.expand},
          {"mamba_inner_layernorms", true},
          {"mamba_proj_bias", false},
          {"max_position_embeddings", s.max_positions},
          {"memory_tokens_interspersed_every", 0},
          {"mlp_hidden_act", "silu"},
          {"model_type", "hymba"},
          {"num_attention_heads", s.heads},
          {"num_experts", 1},
          {"num_experts_per_tok", 1},
          {"num_hidden_layers", s.layers},
          {"num_key_value_heads", s.kv_heads},
          {"num_mamba", 1},
          {"num_memory_tokens", s.meta},
          {"orig_max_position_embeddings", s.original_max_positions},
          {"output_router_logits", false},
          {"pad_token_id", 0},
          {"rms_norm_eps", s.eps},
          {"rope", true},
          {"rope_theta", s.theta},
          {"rope_type", "ntk"},
          {"router_aux_loss_coef", 0.001},
          {"seq_length", s.max_positions},
          {"sliding_window", s.window},
          {"tie_word_embeddings", true},
          {"torch_dtype", "bfloat16"},
          {"transformers_version", "4.44.0"},
          {"use_cache", false},
          {"use_mamba_kernels", true},
          {"v_head_dim", s.value_head_dim()},
          {"vocab_size", s.vocab}};
}

// Random weights under HF's names and shapes, at magnitudes that keep the
// logits near 1 and the SSM stable (A_log as Mamba initialises it, dt bias
// the inverse softplus of small steps).
HfWeights RandomWeights(const Spec& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  HfWeights w;
  auto matrix = [&](const std::string& name, std::vector<uint64_t> shape, float scale) {
    size_t count = 1;
    for (uint64_t d : shape) count *= d;
    HfWeight t{std::move(shape), std::vector<float>(count)};
    for (float& v : t.values) v = scale * normal(rng);
    w[name] = std::move(t);
  };
  auto norm = [&](const std::string& name, int n) {
    HfWeight t{{static_cast<uint64_t>(n)}, std::vector<float>(n)};
    for (float& v : t.values) v = 1.0f + 0.1f * normal(rng);
    w[name] = std::move(t);
  };
  const auto dim = static_cast<uint64_t>(s.dim), inner = static_cast<uint64_t>(s.inner());
  matrix("model.embed_tokens.weight", {static_cast<uint64_t>(s.vocab), dim}, 0.5f);
  matrix("model.memory_tokens", {static_cast<uint64_t>(s.meta), dim}, 0.5f);
  norm("model.final_layernorm.weight", s.dim);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    norm(p + "input_layernorm.weight", s.dim);
    matrix(p + "mamba.in_proj.weight", {static_cast<uint64_t>(s.InProjRows(l)), dim}, 0.3f);
    matrix(p + "mamba.conv1d.weight", {inner, 1, static_cast<uint64_t>(s.d_conv)}, 0.4f);
    matrix(p + "mamba.conv1d.bias", {inner}, 0.1f);
    matrix(p + "mamba.x_proj.0.weight", {static_cast<uint64_t>(s.dt_rank + 2 * s.d_state), inner}, 0.15f);
    matrix(p + "mamba.dt_proj.0.weight", {inner, static_cast<uint64_t>(s.dt_rank)}, 0.3f);
    HfWeight dt_bias{{inner}, std::vector<float>(inner)};
    for (float& b : dt_bias.values) {
      const float step = std::exp(std::log(0.001f) + uniform(rng) * (std::log(0.1f) - std::log(0.001f)));
      b = step + std::log(-std::expm1(-step));
    }
    w[p + "mamba.dt_proj.0.bias"] = dt_bias;
    HfWeight a_log{{inner, static_cast<uint64_t>(s.d_state)}, {}};
    for (uint64_t c = 0; c < inner; ++c) {
      for (int n = 0; n < s.d_state; ++n) a_log.values.push_back(std::log(static_cast<float>(n + 1)) + 0.1f * normal(rng));
    }
    w[p + "mamba.A_log.0"] = a_log;
    norm(p + "mamba.D.0", s.inner());
    norm(p + "mamba.dt_layernorm.weight", s.dt_rank);
    norm(p + "mamba.B_layernorm.weight", s.d_state);
    norm(p + "mamba.C_layernorm.weight", s.d_state);
    norm(p + "mamba.pre_avg_layernorm1.weight", s.inner());
    norm(p + "mamba.pre_avg_layernorm2.weight", s.inner());
    matrix(p + "mamba.out_proj.weight", {dim, inner}, 0.2f);
    norm(p + "pre_moe_layernorm.weight", s.dim);
    matrix(p + "moe.experts.0.gate_proj.weight", {static_cast<uint64_t>(s.hidden), dim}, 0.25f);
    matrix(p + "moe.experts.0.up_proj.weight", {static_cast<uint64_t>(s.hidden), dim}, 0.25f);
    matrix(p + "moe.experts.0.down_proj.weight", {dim, static_cast<uint64_t>(s.hidden)}, 0.2f);
  }
  return w;
}

Weights ValuesOf(const HfWeights& weights) {
  Weights out;
  for (const auto& [name, w] : weights) out[name] = w.values;
  return out;
}

// What a control run leaves out, to show the comparison would notice.
struct Variant {
  bool window = true;       // SWA layers truncate their caches
  bool meta_tokens = true;  // the meta tokens run first
};

// HymbaForCausalLM generating one token at a time with its cache, in f32.
class Reference {
 public:
  Reference(const Spec& s, Weights w, Variant v = {})
      : s_(s),
        w_(std::move(w)),
        v_(v),
        keys_(s.layers),
        values_(s.layers),
        conv_(s.layers, std::vector<float>(static_cast<size_t>(s.inner()) * s.d_conv, 0.0f)),
        ssm_(s.layers, std::vector<float>(static_cast<size_t>(s.inner()) * s.d_state, 0.0f)) {
    // LlamaRotaryEmbedding, rope_type "ntk" (factor 2).
    const int d = s.head_dim();
    const double base = s.theta * std::pow(2.0 * s.max_positions / s.original_max_positions - 1.0,
                                           static_cast<double>(d) / (d - 2));
    for (int i = 0; i < d; i += 2) inv_freq_.push_back(1.0f / std::pow(static_cast<float>(base), static_cast<float>(i) / d));
  }

  // The logits of the next token of the sequence; the first call runs the
  // meta tokens (model.memory_tokens prepended to the first input).
  std::vector<float> Forward(int token) {
    if (!started_) {
      started_ = true;
      if (v_.meta_tokens) {
        for (int m = 0; m < s_.meta; ++m) {
          const std::vector<float>& memory = W("model.memory_tokens");
          Step(std::vector<float>(memory.begin() + m * s_.dim, memory.begin() + (m + 1) * s_.dim));
        }
      }
      position_ = s_.meta;  // generate()'s position_ids: the first token sits past the meta tokens
    }
    const std::vector<float>& embed = W("model.embed_tokens.weight");
    std::vector<float> x = Step(std::vector<float>(embed.begin() + token * s_.dim, embed.begin() + (token + 1) * s_.dim));
    x = RmsNorm(x, "model.final_layernorm.weight");
    return Linear("model.embed_tokens.weight", x);  // tied lm_head
  }

 private:
  using Rows = std::vector<std::vector<float>>;

  const std::vector<float>& W(const std::string& name) const { return w_.at(name); }

  // out = W x for W [out, in].
  std::vector<float> Linear(const std::string& name, const std::vector<float>& x) const {
    const std::vector<float>& m = W(name);
    std::vector<float> out(m.size() / x.size(), 0.0f);
    for (size_t r = 0; r < out.size(); ++r) {
      for (size_t i = 0; i < x.size(); ++i) out[r] += m[r * x.size() + i] * x[i];
    }
    return out;
  }

  // HymbaRMSNorm.
  std::vector<float> RmsNorm(const std::vector<float>& x, const std::string& weight) const {
    float variance = 0.0f;
    for (float v : x) variance += v * v;
    variance /= static_cast<float>(x.size());
    const float r = 1.0f / std::sqrt(variance + s_.eps);
    std::vector<float> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = W(weight)[i] * (x[i] * r);
    return out;
  }

  static float Silu(float v) { return v / (1.0f + std::exp(-v)); }

  // apply_rotary_pos_emb on each head: x·cos + rotate_half(x)·sin.
  void Rope(std::vector<float>& x, int heads) const {
    const int d = s_.head_dim(), half = d / 2;
    for (int h = 0; h < heads; ++h) {
      float* v = x.data() + h * d;
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(position_) * inv_freq_[i];
        const float c = std::cos(angle), sn = std::sin(angle);
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * sn;
        v[i + half] = b * c + a * sn;
      }
    }
  }

  // The decoder layers on one input at position_, which then advances.
  std::vector<float> Step(std::vector<float> x) {
    const int d = s_.head_dim(), vd = s_.value_head_dim(), inner = s_.inner();
    for (int l = 0; l < s_.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      // HymbaBlock: in_proj, then [q, k, v (owners), xs] and z.
      const std::vector<float> projected = Linear(p + "mamba.in_proj.weight", RmsNorm(x, p + "input_layernorm.weight"));
      auto take = [&, at = size_t{0}](int n) mutable {
        std::vector<float> part(projected.begin() + at, projected.begin() + at + n);
        at += n;
        return part;
      };
      std::vector<float> q = take(s_.heads * d);
      std::vector<float> k, v;
      if (s_.OwnsKv(l)) {
        k = take(s_.kv_heads * d);
        v = take(s_.kv_heads * vd);
      }
      const std::vector<float> xs = take(inner);
      const std::vector<float> z = take(inner);

      // causal_conv1d_update: the state's d_conv columns shift left, xs
      // enters last, and the output is the kernel over the new state.
      std::vector<float> u(inner);
      for (int c = 0; c < inner; ++c) {
        float* state = conv_[l].data() + c * s_.d_conv;
        for (int j = 0; j + 1 < s_.d_conv; ++j) state[j] = state[j + 1];
        state[s_.d_conv - 1] = xs[c];
        float sum = W(p + "mamba.conv1d.bias")[c];
        for (int j = 0; j < s_.d_conv; ++j) sum += W(p + "mamba.conv1d.weight")[c * s_.d_conv + j] * state[j];
        u[c] = Silu(sum);
      }

      // Attention: an SWA owner truncates its cache to the meta tokens and
      // the last window - 1 entries before appending; a consumer attends
      // over its producer's cache as updated in this step.
      Rope(q, s_.heads);
      if (s_.OwnsKv(l)) {
        Rope(k, s_.kv_heads);
        if (v_.window && !s_.IsGlobal(l) && static_cast<int>(keys_[l].size()) + 1 > s_.window + s_.meta) {
          for (Rows* cache : {&keys_[l], &values_[l]}) {
            Rows kept(cache->begin(), cache->begin() + s_.meta);
            kept.insert(kept.end(), cache->end() - (s_.window - 1), cache->end());
            *cache = kept;
          }
        }
        keys_[l].push_back(k);
        values_[l].push_back(v);
      }
      const Rows& keys = keys_[s_.Producer(l)];
      const Rows& values = values_[s_.Producer(l)];
      std::vector<float> attn(static_cast<size_t>(s_.heads) * vd, 0.0f);
      for (int h = 0; h < s_.heads; ++h) {
        const int g = h / (s_.heads / s_.kv_heads);  // repeat_kv
        std::vector<float> scores(keys.size());
        for (size_t t = 0; t < keys.size(); ++t) {
          float dot = 0.0f;
          for (int i = 0; i < d; ++i) dot += q[h * d + i] * keys[t][g * d + i];
          scores[t] = dot / std::sqrt(static_cast<float>(d));
        }
        const float top = *std::max_element(scores.begin(), scores.end());
        float total = 0.0f;
        for (float& sc : scores) total += (sc = std::exp(sc - top));
        for (size_t t = 0; t < keys.size(); ++t) {
          for (int i = 0; i < vd; ++i) attn[h * vd + i] += scores[t] / total * values[t][g * vd + i];
        }
      }

      // The SSM: x_proj -> dt, B, C, each normed; selective_state_update.
      const std::vector<float> params = Linear(p + "mamba.x_proj.0.weight", u);
      const std::vector<float> dt_low = RmsNorm({params.begin(), params.begin() + s_.dt_rank}, p + "mamba.dt_layernorm.weight");
      const std::vector<float> b = RmsNorm({params.begin() + s_.dt_rank, params.begin() + s_.dt_rank + s_.d_state},
                                           p + "mamba.B_layernorm.weight");
      const std::vector<float> cc = RmsNorm({params.begin() + s_.dt_rank + s_.d_state, params.end()},
                                            p + "mamba.C_layernorm.weight");
      const std::vector<float> dt = Linear(p + "mamba.dt_proj.0.weight", dt_low);
      std::vector<float> y(inner);
      for (int c = 0; c < inner; ++c) {
        float delta = dt[c] + W(p + "mamba.dt_proj.0.bias")[c];
        delta = delta <= 20.0f ? std::log1p(std::exp(delta)) : delta;
        float out = 0.0f;
        for (int n = 0; n < s_.d_state; ++n) {
          const float a = -std::exp(W(p + "mamba.A_log.0")[c * s_.d_state + n]);
          float& state = ssm_[l][c * s_.d_state + n];
          state = state * std::exp(delta * a) + delta * b[n] * u[c];
          out += state * cc[n];
        }
        out += W(p + "mamba.D.0")[c] * u[c];
        y[c] = out * (z[c] / (1.0f + std::exp(-z[c])));
      }

      const std::vector<float> a1 = RmsNorm(attn, p + "mamba.pre_avg_layernorm1.weight");
      const std::vector<float> a2 = RmsNorm(y, p + "mamba.pre_avg_layernorm2.weight");
      std::vector<float> fused(inner);
      for (int i = 0; i < inner; ++i) fused[i] = (a1[i] + a2[i]) / 2;
      const std::vector<float> mixed = Linear(p + "mamba.out_proj.weight", fused);
      for (int i = 0; i < s_.dim; ++i) x[i] += mixed[i];

      // HymbaMLP of the one expert.
      const std::vector<float> h = RmsNorm(x, p + "pre_moe_layernorm.weight");
      std::vector<float> gate = Linear(p + "moe.experts.0.gate_proj.weight", h);
      const std::vector<float> up = Linear(p + "moe.experts.0.up_proj.weight", h);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = Silu(gate[i]) * up[i];
      const std::vector<float> down = Linear(p + "moe.experts.0.down_proj.weight", gate);
      for (int i = 0; i < s_.dim; ++i) x[i] += down[i];
    }
    ++position_;
    return x;
  }

  Spec s_;
  Weights w_;
  Variant v_;
  std::vector<float> inv_freq_;
  bool started_ = false;
  int position_ = 0;
  std::vector<Rows> keys_, values_;          // per owning layer: a K and a V row per kept position
  std::vector<std::vector<float>> conv_;     // per layer [inner][d_conv], as HF's cache
  std::vector<std::vector<float>> ssm_;      // per layer [inner][d_state]
};

// Canonical name -> HF name.
std::string HfName(const std::string& canonical) {
  const std::map<std::string, std::string> top = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                  {"meta_tokens.weight", "model.memory_tokens"},
                                                  {"output_norm.weight", "model.final_layernorm.weight"}};
  if (top.count(canonical) != 0) return top.at(canonical);
  const std::map<std::string, std::string> layer = {
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
      {"ffn_down.weight", "moe.experts.0.down_proj.weight"}};
  const size_t dot = canonical.find('.', 4);  // "blk.<layer>.<suffix>"
  return "model.layers." + canonical.substr(4, dot - 4) + "." + layer.at(canonical.substr(dot + 1));
}

// Rows [first, first + heads·head_dim) of a matrix with `cols` columns, from
// interleaved pairs (2j, 2j + 1) back to rotate-half pairs (j, j + head_dim/2).
void ToRotateHalfRows(std::vector<float>& m, size_t cols, size_t first, int heads, int head_dim) {
  const std::vector<float> in = m;
  for (int h = 0; h < heads; ++h) {
    for (int j = 0; j < head_dim / 2; ++j) {
      for (int member = 0; member < 2; ++member) {
        const size_t from = first + h * head_dim + 2 * j + member, to = first + h * head_dim + member * (head_dim / 2) + j;
        std::copy_n(in.begin() + from * cols, cols, m.begin() + to * cols);
      }
    }
  }
}

// The weights the packed image decodes to: the quantizer's reconstructions
// under their HF names, in_proj's q and k rows back in HF's order.
Weights HfReconstruction(const Spec& s, const host::PackedModel& packed) {
  Weights out;
  for (const host::QuantizedTensor& t : packed.tensors) {
    std::vector<float> values = t.reconstruction;
    const size_t suffix = t.name.find(".ssm_in.weight");
    if (suffix != std::string::npos) {
      const int layer = std::stoi(t.name.substr(4, suffix - 4));
      ToRotateHalfRows(values, s.dim, 0, s.heads, s.head_dim());
      if (s.OwnsKv(layer)) ToRotateHalfRows(values, s.dim, static_cast<size_t>(s.dim), s.kv_heads, s.head_dim());
    }
    out[HfName(t.name)] = values;
  }
  return out;
}

// A llama2.c tokenizer.bin of plain pieces (`qmc pack` needs one).
std::vector<uint8_t> PieceTokenizer(int vocab) {
  ByteBuilder b;
  b.Put<int32_t>(8);
  for (int i = 0; i < vocab; ++i) {
    const std::string piece = i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n" : "[" + std::to_string(i) + "]";
    b.Put(-static_cast<float>(i)).Put(static_cast<int32_t>(piece.size())).PutText(piece);
  }
  return b.bytes;
}

host::Checkpoint Load(const Spec& s, const HfWeights& weights) {
  ScratchDir dir;
  WriteHfDirectory(dir.path(), ConfigJson(s), weights);
  host::Checkpoint checkpoint = host::LoadCheckpoint(dir.path());
  checkpoint.tokenizer = PieceTokenizer(s.vocab);
  return checkpoint;
}

struct Agreement {
  float worst = 0.0f;    // max |engine − reference| over every logit of every position
  float largest = 0.0f;  // max |reference logit|
};

// `tokens` teacher-forced through the engine, for a context of exactly their
// count, and through `reference`; then the first positions again, which
// start a new sequence and must give the same logits.
Agreement Compare(const std::vector<uint8_t>& image, Reference reference, const std::vector<int>& tokens) {
  const image::ImageView view = image::ImageView::OpenFile(image).value();
  EXPECT_TRUE(view.Validate().ok());
  const auto positions = static_cast<uint32_t>(tokens.size());
  std::vector<uint8_t> arena(Engine::ArenaBytes(view.model(), view.detail(), positions));
  std::vector<uint8_t> kv(Engine::KvBytes(view.model(), view.detail(), positions));
  Engine engine;
  const Status status = engine.Init(view, arena, kv);
  EXPECT_TRUE(status.ok()) << status.what;
  if (!status.ok()) return {1e9f, 0.0f};
  EXPECT_EQ(engine.context(), positions);
  Agreement agreement;
  std::vector<std::vector<float>> first;
  for (uint32_t pos = 0; pos < positions; ++pos) {
    const float* logits = engine.Forward(static_cast<uint32_t>(tokens[pos]), pos);
    EXPECT_NE(logits, nullptr) << "position " << pos;
    if (logits == nullptr) return {1e9f, 0.0f};
    const std::vector<float> expected = reference.Forward(tokens[pos]);
    for (size_t i = 0; i < expected.size(); ++i) {
      agreement.worst = std::max(agreement.worst, std::fabs(logits[i] - expected[i]));
      agreement.largest = std::max(agreement.largest, std::fabs(expected[i]));
    }
    if (pos < 6) first.emplace_back(logits, logits + expected.size());
  }
  EXPECT_EQ(engine.Forward(static_cast<uint32_t>(tokens[0]), positions), nullptr);
  for (uint32_t pos = 0; pos < first.size(); ++pos) {
    const float* logits = engine.Forward(static_cast<uint32_t>(tokens[pos]), pos);
    EXPECT_TRUE(std::equal(first[pos].begin(), first[pos].end(), logits)) << "restarted at position " << pos;
  }
  return agreement;
}

std::vector<int> RandomTokens(const Spec& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> tokens(kPositions);
  for (int& t : tokens) t = static_cast<int>(rng() % static_cast<uint32_t>(s.vocab));
  return tokens;
}

void Report(const char* what, const Agreement& a) {
  std::printf("[ measured ] %s: max |engine - reference| %.3g over logits up to %.3g\n", what, a.worst, a.largest);
}

TEST(HymbaForward, TinyHymbaMatchesTheReference) {
  const Spec spec;
  const HfWeights weights = RandomWeights(spec, 1);
  const host::Checkpoint checkpoint = Load(spec, weights);
  const image::ModelConfig& c = checkpoint.config;
  const image::ModelDetail& d = checkpoint.detail;
  EXPECT_EQ(c.arch, static_cast<uint32_t>(image::Arch::kHymba));
  EXPECT_EQ(c.seq_len, static_cast<uint32_t>(spec.max_positions - spec.meta));  // the caller's positions
  EXPECT_EQ(d.meta_tokens, static_cast<uint32_t>(spec.meta));
  EXPECT_EQ(d.value_head_dim, static_cast<uint32_t>(spec.value_head_dim()));
  for (int l = 0; l < spec.layers; ++l) EXPECT_EQ(d.kv_source[l], spec.Producer(l)) << l;

  // KV for the owners (0, 5 global: every position; 1, 4 windowed: a ring
  // of 8), all past the meta tokens, then each layer's conv and SSM state.
  const size_t row = static_cast<size_t>(spec.kv_heads) * (spec.head_dim() + spec.value_head_dim()) * sizeof(float);
  const size_t state = static_cast<size_t>(spec.layers) * spec.inner() * (spec.d_conv - 1 + spec.d_state) * sizeof(float);
  EXPECT_EQ(Engine::KvBytes(c, d, kPositions),
            (2 * (spec.meta + kPositions) + 2 * (spec.meta + spec.window)) * row + state);

  const Reference reference(spec, ValuesOf(weights));
  const std::vector<int> tokens = RandomTokens(spec, 2);
  host::QuantOptions f32;
  f32.quantizer = image::Quantizer::kF32;
  const host::PackedModel packed = host::PackModel(checkpoint, f32);
  const Agreement exact = Compare(packed.image, reference, tokens);
  Report("Hymba f32", exact);
  EXPECT_LE(exact.worst, kTolerance);
  EXPECT_GT(exact.largest, 0.5f);
  // The comparison sees the window and the meta tokens.
  EXPECT_GT(Compare(packed.image, Reference(spec, ValuesOf(weights), {.window = false}), tokens).worst,
            100 * kTolerance);
  EXPECT_GT(Compare(packed.image, Reference(spec, ValuesOf(weights), {.meta_tokens = false}), tokens).worst,
            100 * kTolerance);

  // A quantized image runs exactly the model its reconstructions define:
  // every matrix quantized, the SSM's vectors, norms and meta tokens exact
  // f32 in MRAM.
  const host::PackedModel quantized = host::PackModel(checkpoint, host::FindPreset("paper-3mlc")->options);
  const image::ImageView view = image::ImageView::OpenFile(quantized.image).value();
  ASSERT_TRUE(view.Validate().ok());
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    const bool matrix = image::RequiredTensor(view.model(), view.detail(), i).is_matrix;
    const bool exact_f32 = t.scheme == static_cast<uint8_t>(image::Scheme::kF32);
    EXPECT_EQ(matrix, !exact_f32) << t.name;
    if (!matrix) EXPECT_EQ(view.section(t.data.section).window, static_cast<uint8_t>(image::Window::kMram)) << t.name;
  }
  const Agreement own = Compare(quantized.image, Reference(spec, HfReconstruction(spec, quantized)), tokens);
  Report("Hymba paper-3mlc", own);
  EXPECT_LE(own.worst, kTolerance);
  EXPECT_GT(Compare(quantized.image, reference, tokens).worst, 100 * kTolerance);  // it is another model
}

// A Hymba config the engine cannot run as modeling_hymba.py does is refused
// by name: exit 1, one line on stderr.
TEST(HymbaForward, PackRefusesUnsupportedHymbaConfigs) {
  const fs::path dir = FreshTestDir("qmc_hymba_cli_");
  const Spec spec;
  const HfWeights weights = RandomWeights(spec, 3);
  WriteFile(dir / "tok.bin", PieceTokenizer(spec.vocab));
  struct Case {
    const char* key;
    json value;
    const char* words;
  };
  const Case cases[] = {{"num_mamba", 2, "more than one SSM"},
                        {"rope_type", "dynamic_ntk", "rope_type other than ntk"},
                        {"kq_norm", "perhead", "kq_norm"},
                        {"mamba_inner_layernorms", false, "without inner norms"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    const fs::path model = dir / "model";
    fs::remove_all(model);
    fs::create_directories(model);
    json config = ConfigJson(spec);
    config[c.key] = c.value;
    WriteHfDirectory(model, config, weights);
    const CliRun r = Qmc("pack " + model.string() + " --tokenizer " + (dir / "tok.bin").string() + " -o " +
                             (dir / "out.qmc").string(),
                         dir);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(c.words), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir / "out.qmc"));
  }
  fs::remove_all(dir);
}

// Hymba-1.5B-Base at a 2048-token context: 3 global owners keep 128 + 2048
// positions, 14 windowed owners 128 + 1024, 5 KV heads of 64 + 128 values
// each; 32 layers of 3200 x (3 + 16) f32 conv and SSM state.
TEST(HymbaForward, RealConfigKvAndStateBytes) {
  const fs::path config = fs::path(QMC_SHARED_DIR) / "models/paper/hymba-1.5b-base/config.json";
  if (!fs::exists(config)) GTEST_SKIP() << config << " is missing";
  const host::ModelSpec spec = host::LoadHuggingFaceConfig(config);
  EXPECT_EQ(spec.config.seq_len, 8192u - 128u);
  EXPECT_EQ(spec.detail.value_head_dim, 128u);
  const size_t rows = 3 * (128 + 2048) + 14 * (128 + 1024);
  const size_t state = 32ull * 3200 * (3 + 16) * 4;
  EXPECT_EQ(Engine::KvBytes(spec.config, spec.detail, 2048, KvFormat::kF32), rows * 5 * (64 + 128) * 4 + state);
  EXPECT_EQ(Engine::KvBytes(spec.config, spec.detail, 2048, KvFormat::kFp16), rows * 5 * (64 + 128) * 2 + state);
  std::printf("[ measured ] Hymba-1.5B KV + state at 2048 positions: %zu bytes f32, %zu fp16, %zu int8\n",
              Engine::KvBytes(spec.config, spec.detail, 2048, KvFormat::kF32),
              Engine::KvBytes(spec.config, spec.detail, 2048, KvFormat::kFp16),
              Engine::KvBytes(spec.config, spec.detail, 2048, KvFormat::kInt8));
}

}  // namespace
}  // namespace qmc::testing
