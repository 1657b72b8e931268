// Llama-3.2 and Phi-1.5 end to end: a tiny random model written as a
// HuggingFace directory, loaded, packed and run by the engine, against a
// forward pass written plainly here from transformers' modeling_llama.py,
// modeling_phi.py and modeling_rope_utils.py on the HF-named tensors in HF's
// rotate-half layout, sharing no code with common/ or the loader's row
// reordering. The paper's published configs read as described; `qmc run`
// and qmc-fw-emu agree on a tiny Phi; `qmc pack` refuses what it cannot run.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/pack.h"
#include "host/pack_presets.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"
#include "tests/hf_directory.h"

namespace qmc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Weights = std::map<std::string, std::vector<float>>;  // HF name -> row-major values

// Logits are of magnitude ~1 (see RandomWeights), so an absolute bound is
// also a relative one; f32 summation order moves them by ~1e-6, while a
// wrong RoPE band, rotated dim or bias moves them by 1e-2 and more.
constexpr float kTolerance = 1e-4f;
constexpr int kPositions = 80;

// What config.json says, and so all the reference reads.
struct Spec {
  std::string model_type;  // "llama" or "phi"
  int dim, hidden, layers, heads, kv_heads, head_dim, vocab, context;
  float theta, eps;
  int rotary;           // leading dims of each q/k head that rotate
  float factor;         // llama3 rope_scaling; 0: none
  float low_freq, high_freq;
  int original_context;
  bool tied;
};

// Llama-3.2 in miniature: GQA 4/2, head_dim 16 given explicitly (hidden /
// heads is 10), a tied classifier, and llama3 scaling with frequencies in
// every band: wavelengths 2π·10000^(i/8) are 6, 20, 63 (< 1024/8: kept),
// 199, 628 (blended), 1987, 6283, 19869 (> 1024: divided by 8).
Spec TinyLlama32() {
  return {"llama", 40, 72, 2, 4, 2, 16, 61, 128, 10000.0f, 1e-5f, 16, 8.0f, 1.0f, 8.0f, 1024, true};
}

// Phi-1.5 in miniature: partial_rotary_factor 0.5 (6 of 12 dims rotate),
// biases everywhere, an untied classifier with its own bias.
Spec TinyPhi() {
  return {"phi", 48, 80, 2, 4, 4, 12, 100, 128, 10000.0f, 1e-5f, 6, 0.0f, 0.0f, 0.0f, 0, false};
}

bool IsPhi(const Spec& s) { return s.model_type == "phi"; }

json ConfigJson(const Spec& s) {
  json c = {{"model_type", s.model_type},         {"hidden_size", s.dim},
            {"intermediate_size", s.hidden},      {"num_hidden_layers", s.layers},
            {"num_attention_heads", s.heads},     {"num_key_value_heads", s.kv_heads},
            {"vocab_size", s.vocab},              {"max_position_embeddings", s.context},
            {"rope_theta", s.theta},              {"tie_word_embeddings", s.tied},
            {"rope_scaling", nullptr},            {"torch_dtype", "float32"}};
  if (IsPhi(s)) {
    c["architectures"] = {"PhiForCausalLM"};
    c["layer_norm_eps"] = s.eps;
    c["hidden_act"] = "gelu_new";
    c["partial_rotary_factor"] = static_cast<double>(s.rotary) / s.head_dim;
    c["qk_layernorm"] = false;
  } else {
    c["architectures"] = {"LlamaForCausalLM"};
    c["rms_norm_eps"] = s.eps;
    c["hidden_act"] = "silu";
    c["head_dim"] = s.head_dim;
    if (s.factor != 0.0f) {
      c["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", s.factor},
                           {"low_freq_factor", s.low_freq},
                           {"high_freq_factor", s.high_freq},
                           {"original_max_position_embeddings", s.original_context}};
    }
  }
  return c;
}

// Every tensor by HF name with its shape: LlamaForCausalLM's, or PhiForCausalLM's.
std::map<std::string, std::vector<uint64_t>> HfShapes(const Spec& s) {
  const uint64_t dim = s.dim, hidden = s.hidden, q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  std::map<std::string, std::vector<uint64_t>> shapes = {{"model.embed_tokens.weight", {uint64_t(s.vocab), dim}}};
  if (!s.tied) shapes["lm_head.weight"] = {uint64_t(s.vocab), dim};
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    shapes[p + "input_layernorm.weight"] = {dim};
    shapes[p + "self_attn.q_proj.weight"] = {q, dim};
    shapes[p + "self_attn.k_proj.weight"] = {kv, dim};
    shapes[p + "self_attn.v_proj.weight"] = {kv, dim};
    if (IsPhi(s)) {
      shapes[p + "input_layernorm.bias"] = {dim};
      shapes[p + "self_attn.q_proj.bias"] = {q};
      shapes[p + "self_attn.k_proj.bias"] = {kv};
      shapes[p + "self_attn.v_proj.bias"] = {kv};
      shapes[p + "self_attn.dense.weight"] = {dim, q};
      shapes[p + "self_attn.dense.bias"] = {dim};
      shapes[p + "mlp.fc1.weight"] = {hidden, dim};
      shapes[p + "mlp.fc1.bias"] = {hidden};
      shapes[p + "mlp.fc2.weight"] = {dim, hidden};
      shapes[p + "mlp.fc2.bias"] = {dim};
    } else {
      shapes[p + "self_attn.o_proj.weight"] = {dim, q};
      shapes[p + "post_attention_layernorm.weight"] = {dim};
      shapes[p + "mlp.gate_proj.weight"] = {hidden, dim};
      shapes[p + "mlp.up_proj.weight"] = {hidden, dim};
      shapes[p + "mlp.down_proj.weight"] = {dim, hidden};
    }
  }
  if (IsPhi(s)) {
    shapes["model.final_layernorm.weight"] = {dim};
    shapes["model.final_layernorm.bias"] = {dim};
    shapes["lm_head.bias"] = {uint64_t(s.vocab)};
  } else {
    shapes["model.norm.weight"] = {dim};
  }
  return shapes;
}

// Norm weights near 1, biases near 0, matrices N(0, 0.15): the attention
// scores and the logits come out of magnitude ~1, so RoPE and every bias
// visibly matter.
HfWeights RandomWeights(const Spec& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  HfWeights weights;
  for (const auto& [name, shape] : HfShapes(s)) {
    HfWeight& w = weights[name];
    w.shape = shape;
    w.values.resize(shape.size() == 1 ? shape[0] : shape[0] * shape[1]);
    const bool bias = name.ends_with(".bias"), vector = shape.size() == 1;
    for (float& v : w.values) v = vector && !bias ? 1.0f + 0.1f * normal(rng) : (bias ? 0.1f : 0.15f) * normal(rng);
  }
  return weights;
}

Weights ValuesOf(const HfWeights& weights) {
  Weights out;
  for (const auto& [name, w] : weights) out[name] = w.values;
  return out;
}

// transformers' decoder, one token at a time with a KV cache, in f32.
class Reference {
 public:
  enum class Band { kKept, kBlended, kDivided };

  Reference(const Spec& s, Weights w) : s_(s), w_(std::move(w)), keys_(s.layers), values_(s.layers) {
    // modeling_rope_utils.py: _compute_default_rope_parameters over the
    // rotated dims, then _compute_llama3_parameters.
    const float kPi = 3.14159265358979323846f;
    for (int i = 0; i < s.rotary / 2; ++i) {
      float inv = 1.0f / std::pow(s.theta, static_cast<float>(2 * i) / static_cast<float>(s.rotary));
      Band band = Band::kKept;
      if (s.factor != 0.0f) {
        const float wavelen = 2.0f * kPi / inv;
        const float low_wavelen = s.original_context / s.low_freq, high_wavelen = s.original_context / s.high_freq;
        if (wavelen > low_wavelen) {
          inv = inv / s.factor;
          band = Band::kDivided;
        } else if (!(wavelen < high_wavelen)) {
          const float smooth = (s.original_context / wavelen - s.low_freq) / (s.high_freq - s.low_freq);
          inv = (1.0f - smooth) * inv / s.factor + smooth * inv;
          band = Band::kBlended;
        }
      }
      inv_freq_.push_back(inv);
      bands_.push_back(band);
    }
  }

  const std::vector<Band>& bands() const { return bands_; }

  std::vector<float> Forward(int token, int pos) {
    const std::vector<float>& embed = W("model.embed_tokens.weight");
    std::vector<float> x(embed.begin() + token * s_.dim, embed.begin() + (token + 1) * s_.dim);
    for (int l = 0; l < s_.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      if (IsPhi(s_)) {
        // PhiDecoderLayer: attn_outputs + feed_forward_hidden_states + residual.
        const std::vector<float> h = LayerNorm(x, p + "input_layernorm");
        const std::vector<float> a = Linear(p + "self_attn.dense", Attention(l, pos, h));
        const std::vector<float> m = Linear(p + "mlp.fc2", GeluNew(Linear(p + "mlp.fc1", h)));
        for (int i = 0; i < s_.dim; ++i) x[i] = a[i] + m[i] + x[i];
      } else {
        const std::vector<float> a =
            Linear(p + "self_attn.o_proj", Attention(l, pos, RmsNorm(x, p + "input_layernorm.weight")));
        for (int i = 0; i < s_.dim; ++i) x[i] += a[i];
        const std::vector<float> h = RmsNorm(x, p + "post_attention_layernorm.weight");
        std::vector<float> gate = Linear(p + "mlp.gate_proj", h);
        const std::vector<float> up = Linear(p + "mlp.up_proj", h);
        for (int i = 0; i < s_.hidden; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
        const std::vector<float> m = Linear(p + "mlp.down_proj", gate);
        for (int i = 0; i < s_.dim; ++i) x[i] += m[i];
      }
    }
    x = IsPhi(s_) ? LayerNorm(x, "model.final_layernorm") : RmsNorm(x, "model.norm.weight");
    return Linear(s_.tied ? "model.embed_tokens" : "lm_head", x);
  }

 private:
  const std::vector<float>& W(const std::string& name) const { return w_.at(name); }

  // nn.Linear: W·in, plus the bias when the checkpoint has one.
  std::vector<float> Linear(const std::string& name, const std::vector<float>& in) const {
    const std::vector<float>& w = W(name + ".weight");
    const size_t rows = w.size() / in.size();
    std::vector<float> out(rows);
    for (size_t r = 0; r < rows; ++r) {
      float sum = 0.0f;
      for (size_t c = 0; c < in.size(); ++c) sum += w[r * in.size() + c] * in[c];
      out[r] = sum;
    }
    if (w_.count(name + ".bias") != 0) {
      for (size_t r = 0; r < rows; ++r) out[r] += W(name + ".bias")[r];
    }
    return out;
  }

  // LlamaRMSNorm.
  std::vector<float> RmsNorm(const std::vector<float>& x, const std::string& weight) const {
    float variance = 0.0f;
    for (float v : x) variance += v * v;
    variance /= static_cast<float>(x.size());
    const float scale = 1.0f / std::sqrt(variance + s_.eps);
    std::vector<float> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = W(weight)[i] * (x[i] * scale);
    return out;
  }

  // nn.LayerNorm with weight and bias.
  std::vector<float> LayerNorm(const std::vector<float>& x, const std::string& name) const {
    float mean = 0.0f, variance = 0.0f;
    for (float v : x) mean += v;
    mean /= static_cast<float>(x.size());
    for (float v : x) variance += (v - mean) * (v - mean);
    variance /= static_cast<float>(x.size());
    const float scale = 1.0f / std::sqrt(variance + s_.eps);
    std::vector<float> out(x.size());
    const std::vector<float>& weight = W(name + ".weight");
    const std::vector<float>& bias = W(name + ".bias");
    for (size_t i = 0; i < x.size(); ++i) out[i] = (x[i] - mean) * scale * weight[i] + bias[i];
    return out;
  }

  // NewGELUActivation.
  static std::vector<float> GeluNew(std::vector<float> u) {
    const float k = std::sqrt(2.0f / 3.14159265358979323846f);
    for (float& v : u) v = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * std::pow(v, 3.0f))));
    return u;
  }

  // apply_rotary_pos_emb on the first `rotary` dims of each head:
  // q·cos + rotate_half(q)·sin, where rotate_half(x1, x2) = (−x2, x1).
  void Rope(std::vector<float>& v, int heads, int pos) const {
    const int half = s_.rotary / 2;
    for (int h = 0; h < heads; ++h) {
      float* head = v.data() + h * s_.head_dim;
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos) * inv_freq_[i];
        const float cos = std::cos(angle), sin = std::sin(angle);
        const float x1 = head[i], x2 = head[i + half];
        head[i] = x1 * cos - x2 * sin;
        head[i + half] = x2 * cos + x1 * sin;
      }
    }
  }

  // Causal attention over positions 0..pos, key/value heads repeated for
  // their query groups (repeat_kv); returns the heads' outputs, concatenated.
  std::vector<float> Attention(int layer, int pos, const std::vector<float>& h) {
    const std::string p = "model.layers." + std::to_string(layer) + ".self_attn.";
    std::vector<float> q = Linear(p + "q_proj", h), k = Linear(p + "k_proj", h);
    Rope(q, s_.heads, pos);
    Rope(k, s_.kv_heads, pos);
    keys_[layer].resize(pos + 1);
    values_[layer].resize(pos + 1);
    keys_[layer][pos] = k;
    values_[layer][pos] = Linear(p + "v_proj", h);
    const int d = s_.head_dim;
    std::vector<float> out(static_cast<size_t>(s_.heads) * d, 0.0f), weights(pos + 1);
    for (int head = 0; head < s_.heads; ++head) {
      const int kv_head = head / (s_.heads / s_.kv_heads);
      float max_score = -INFINITY;
      for (int t = 0; t <= pos; ++t) {
        float score = 0.0f;
        for (int i = 0; i < d; ++i) score += q[head * d + i] * keys_[layer][t][kv_head * d + i];
        weights[t] = score / std::sqrt(static_cast<float>(d));
        max_score = std::max(max_score, weights[t]);
      }
      float sum = 0.0f;
      for (float& w : weights) sum += (w = std::exp(w - max_score));
      for (int t = 0; t <= pos; ++t) {
        for (int i = 0; i < d; ++i) out[head * d + i] += weights[t] / sum * values_[layer][t][kv_head * d + i];
      }
    }
    return out;
  }

  Spec s_;
  Weights w_;
  std::vector<float> inv_freq_;
  std::vector<Band> bands_;
  std::vector<std::vector<std::vector<float>>> keys_, values_;  // [layer][position][kv_heads * head_dim]
};

// --- the image's own weights, back in HF's terms ---

std::string HfName(const Spec& s, const std::string& canonical) {
  const std::map<std::string, std::string> top = {
      {"token_embd.weight", "model.embed_tokens.weight"}, {"output.weight", "lm_head.weight"},
      {"output.bias", "lm_head.bias"},
      {"output_norm.weight", IsPhi(s) ? "model.final_layernorm.weight" : "model.norm.weight"},
      {"output_norm.bias", "model.final_layernorm.bias"}};
  if (top.count(canonical) != 0) return top.at(canonical);
  const std::map<std::string, std::string> layer = {
      {"attn_norm.weight", "input_layernorm.weight"},   {"attn_norm.bias", "input_layernorm.bias"},
      {"attn_q.weight", "self_attn.q_proj.weight"},     {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"},     {"attn_v.bias", "self_attn.v_proj.bias"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"attn_output.weight", IsPhi(s) ? "self_attn.dense.weight" : "self_attn.o_proj.weight"},
      {"attn_output.bias", "self_attn.dense.bias"},
      {"ffn_up.weight", IsPhi(s) ? "mlp.fc1.weight" : "mlp.up_proj.weight"},
      {"ffn_up.bias", "mlp.fc1.bias"},
      {"ffn_down.weight", IsPhi(s) ? "mlp.fc2.weight" : "mlp.down_proj.weight"},
      {"ffn_down.bias", "mlp.fc2.bias"}};
  const size_t dot = canonical.find('.', 4);  // "blk.<layer>.<suffix>"
  return "model.layers." + canonical.substr(4, dot - 4) + "." + layer.at(canonical.substr(dot + 1));
}

// Interleaved q/k rows (pairs 2j, 2j + 1 of the rotated block) back to
// rotate-half (pairs j, j + r/2); the rows past the rotated block stay.
std::vector<float> ToRotateHalf(const std::vector<float>& in, int heads, int head_dim, int rotary) {
  const size_t row = in.size() / (static_cast<size_t>(heads) * head_dim);
  std::vector<float> out = in;
  for (int h = 0; h < heads; ++h) {
    for (int j = 0; j < rotary / 2; ++j) {
      for (int member = 0; member < 2; ++member) {
        const size_t from = h * head_dim + 2 * j + member, to = h * head_dim + member * (rotary / 2) + j;
        std::copy_n(in.begin() + from * row, row, out.begin() + to * row);
      }
    }
  }
  return out;
}

// The weights the packed image decodes to: the quantizer's reconstructions
// under their HF names, in HF's row order.
Weights HfReconstruction(const Spec& s, const host::PackedModel& packed) {
  Weights out;
  for (const host::QuantizedTensor& t : packed.tensors) {
    const bool q = t.name.find(".attn_q.") != std::string::npos, k = t.name.find(".attn_k.") != std::string::npos;
    out[HfName(s, t.name)] =
        q || k ? ToRotateHalf(t.reconstruction, q ? s.heads : s.kv_heads, s.head_dim, s.rotary) : t.reconstruction;
  }
  return out;
}

// --- the engine against the reference ---

struct Agreement {
  float worst = 0.0f;    // max |engine − reference| over every logit of every position
  float largest = 0.0f;  // max |reference logit|
};

// Runs `tokens` (teacher-forced) through the engine on `image` and through `reference`.
Agreement Compare(const std::vector<uint8_t>& image, Reference reference, const std::vector<int>& tokens) {
  const image::ImageView view = image::ImageView::OpenFile(image).value();
  EXPECT_TRUE(view.Validate().ok());
  const auto positions = static_cast<uint32_t>(tokens.size());
  std::vector<uint8_t> arena(Engine::ArenaBytes(view.model(), view.detail(), positions));
  std::vector<uint8_t> kv(Engine::KvBytes(view.model(), view.detail(), positions));
  Engine engine;
  const Status status = engine.Init(view, arena, kv);
  EXPECT_TRUE(status.ok()) << status.what;
  Agreement agreement;
  for (uint32_t pos = 0; pos < positions && status.ok(); ++pos) {
    const float* logits = engine.Forward(static_cast<uint32_t>(tokens[pos]), pos);
    EXPECT_NE(logits, nullptr) << "position " << pos;
    if (logits == nullptr) break;
    const std::vector<float> expected = reference.Forward(tokens[pos], static_cast<int>(pos));
    for (size_t i = 0; i < expected.size(); ++i) {
      agreement.worst = std::max(agreement.worst, std::fabs(logits[i] - expected[i]));
      agreement.largest = std::max(agreement.largest, std::fabs(expected[i]));
    }
  }
  return agreement;
}

std::vector<int> RandomTokens(const Spec& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> tokens(kPositions);
  for (int& t : tokens) t = static_cast<int>(rng() % static_cast<uint32_t>(s.vocab));
  return tokens;
}

// A llama2.c tokenizer.bin whose pieces spell their ids, "[4]", "[5]", ...
// after llama2.c's <unk>, BOS and EOS and the space its encoder prefixes,
// so printed text gives the ids back. Other characters encode as byte
// tokens (byte + 3).
std::vector<uint8_t> IdTokenizer(int vocab) {
  const std::string special[] = {"<unk>", "\n<s>\n", "\n</s>\n", " "};
  ByteBuilder b;
  b.Put<int32_t>(8);
  for (int i = 0; i < vocab; ++i) {
    const std::string piece = i < 4 ? special[i] : "[" + std::to_string(i) + "]";
    b.Put(-static_cast<float>(i)).Put(static_cast<int32_t>(piece.size())).PutText(piece);
  }
  return b.bytes;
}

// The model written as an HF directory and loaded back as `qmc pack` loads it.
host::Checkpoint Load(const Spec& s, const HfWeights& weights) {
  ScratchDir dir;
  WriteHfDirectory(dir.path(), ConfigJson(s), weights);
  host::Checkpoint checkpoint = host::LoadCheckpoint(dir.path());
  checkpoint.tokenizer = IdTokenizer(s.vocab);
  return checkpoint;
}

host::PackedModel PackF32(const host::Checkpoint& checkpoint) {
  host::QuantOptions options;
  options.quantizer = image::Quantizer::kF32;
  return host::PackModel(checkpoint, options);
}

host::PackedModel PackPaper3Mlc(const host::Checkpoint& checkpoint) {
  return host::PackModel(checkpoint, host::FindPreset("paper-3mlc")->options);
}

void Report(const char* what, const Agreement& a) {
  std::printf("[ measured ] %s: max |engine - reference| %.3g over logits up to %.3g\n", what, a.worst, a.largest);
}

TEST(FamilyForward, Llama32WithLlama3RopeAndExplicitHeadDimMatchesTheReference) {
  const Spec spec = TinyLlama32();
  const HfWeights weights = RandomWeights(spec, 1);
  const host::Checkpoint checkpoint = Load(spec, weights);
  const Reference reference(spec, ValuesOf(weights));
  // The config puts frequencies in all three llama3 bands.
  for (const Reference::Band band : {Reference::Band::kKept, Reference::Band::kBlended, Reference::Band::kDivided}) {
    EXPECT_NE(std::count(reference.bands().begin(), reference.bands().end(), band), 0) << static_cast<int>(band);
  }

  const host::PackedModel packed = PackF32(checkpoint);
  const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
  EXPECT_EQ(view.model().head_dim, 16u);
  EXPECT_EQ(view.model().flags, image::kModelSharedClassifier);
  EXPECT_EQ(view.detail().rope_scaling, static_cast<uint32_t>(image::RopeScaling::kLlama3));
  EXPECT_EQ(view.detail().rope_dims, 16u);

  const std::vector<int> tokens = RandomTokens(spec, 2);
  const Agreement f32 = Compare(packed.image, reference, tokens);
  Report("Llama-3.2 f32", f32);
  EXPECT_LE(f32.worst, kTolerance);
  EXPECT_GT(f32.largest, 0.5f);
  // The comparison sees the scaling: unscaled RoPE is far off.
  Spec unscaled = spec;
  unscaled.factor = 0.0f;
  const Agreement off = Compare(packed.image, Reference(unscaled, ValuesOf(weights)), tokens);
  Report("Llama-3.2 f32 against unscaled RoPE (must differ)", off);
  EXPECT_GT(off.worst, 100 * kTolerance);

  // A quantized image runs exactly the model its reconstructions define.
  const host::PackedModel quantized = PackPaper3Mlc(checkpoint);
  const Agreement own = Compare(quantized.image, Reference(spec, HfReconstruction(spec, quantized)), tokens);
  Report("Llama-3.2 paper-3mlc", own);
  EXPECT_LE(own.worst, kTolerance);
  EXPECT_GT(Compare(quantized.image, reference, tokens).worst, 100 * kTolerance);  // it is another model
}

TEST(FamilyForward, PhiWithPartialRotaryAndBiasesMatchesTheReference) {
  const Spec spec = TinyPhi();
  const HfWeights weights = RandomWeights(spec, 3);
  const host::Checkpoint checkpoint = Load(spec, weights);
  const Reference reference(spec, ValuesOf(weights));

  const host::PackedModel packed = PackF32(checkpoint);
  const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
  EXPECT_EQ(view.model().arch, static_cast<uint32_t>(image::Arch::kPhi));
  EXPECT_EQ(view.model().flags, 0u);
  EXPECT_EQ(view.detail().rope_dims, 6u);

  const std::vector<int> tokens = RandomTokens(spec, 4);
  const Agreement f32 = Compare(packed.image, reference, tokens);
  Report("Phi f32", f32);
  EXPECT_LE(f32.worst, kTolerance);
  EXPECT_GT(f32.largest, 0.5f);
  // The comparison sees the partial rotary: rotating whole heads is far off.
  Spec full = spec;
  full.rotary = spec.head_dim;
  const Agreement off = Compare(packed.image, Reference(full, ValuesOf(weights)), tokens);
  Report("Phi f32 against whole-head RoPE (must differ)", off);
  EXPECT_GT(off.worst, 100 * kTolerance);

  const host::PackedModel quantized = PackPaper3Mlc(checkpoint);
  const Agreement own = Compare(quantized.image, Reference(spec, HfReconstruction(spec, quantized)), tokens);
  Report("Phi paper-3mlc", own);
  EXPECT_LE(own.worst, kTolerance);
  EXPECT_GT(Compare(quantized.image, reference, tokens).worst, 100 * kTolerance);
}

// The published configs read as ARCHITECTURES.md describes the models: for
// Llama-3.2-3B, 29 frequencies kept, 6 blended, 29 divided by 32.
TEST(FamilyForward, ThePapersConfigsReadAsPublished) {
  QMC_REQUIRE_SHARED(SharedModel("paper/llama-3.2-3b/config.json"));
  const host::ModelSpec llama = host::LoadHuggingFaceConfig(SharedModel("paper/llama-3.2-3b/config.json"));
  EXPECT_EQ(llama.config.head_dim, 128u);
  EXPECT_EQ(llama.detail.rope_dims, 128u);
  EXPECT_EQ(llama.detail.rope_scaling, static_cast<uint32_t>(image::RopeScaling::kLlama3));
  const image::ModelDetail& d = llama.detail;
  const Spec spec = {"llama", 3072, 8192, 1, 24, 8, 128, 1, 1, llama.config.rope_theta, 1e-5f, 128, d.rope_factor,
                     d.rope_low_freq_factor, d.rope_high_freq_factor, static_cast<int>(d.rope_original_context), true};
  const std::vector<Reference::Band> bands = Reference(spec, {}).bands();
  EXPECT_EQ(std::count(bands.begin(), bands.end(), Reference::Band::kKept), 29);
  EXPECT_EQ(std::count(bands.begin(), bands.end(), Reference::Band::kBlended), 6);
  EXPECT_EQ(std::count(bands.begin(), bands.end(), Reference::Band::kDivided), 29);

  const host::ModelSpec phi = host::LoadHuggingFaceConfig(SharedModel("paper/phi-1_5/config.json"));
  EXPECT_EQ(phi.config.arch, static_cast<uint32_t>(image::Arch::kPhi));
  EXPECT_EQ(phi.config.head_dim, 64u);
  EXPECT_EQ(phi.detail.rope_dims, 32u);
  EXPECT_EQ(phi.config.flags, 0u);  // lm_head is its own, with a bias
}

// --- the CLI and the firmware on a tiny Phi ---

class FamilyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("qmc_family_cli_");
    tokenizer_ = dir_ / "tok.bin";
    WriteFile(tokenizer_, IdTokenizer(TinyPhi().vocab));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A tiny Phi in dir_/phi whose classifier bias keeps IdTokenizer's
  // special tokens from ever winning, so greedy runs go the whole way.
  fs::path WritePhi() {
    HfWeights weights = RandomWeights(TinyPhi(), 5);
    for (int i = 0; i < 4; ++i) weights.at("lm_head.bias").values[i] = -30.0f;
    const fs::path model = dir_ / "phi";
    fs::create_directories(model);
    WriteHfDirectory(model, ConfigJson(TinyPhi()), weights);
    return model;
  }

  // `qmc pack` of `model` with "f32" or a paper preset.
  fs::path Pack(const fs::path& model, const std::string& scheme) {
    const fs::path image = dir_ / (scheme + ".qmc");
    const std::string flags = scheme.rfind("paper-", 0) == 0 ? "--preset " + scheme : "--scheme " + scheme;
    const CliRun r = Qmc("pack " + model.string() + " --tokenizer " + tokenizer_.string() + " -q " + flags + " -o " +
                             image.string(),
                         dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return image;
  }

  std::string Run(const fs::path& image, const std::string& args) {
    const CliRun r = Qmc("run " + image.string() + " " + args, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  // qmc-fw-emu on `image`, flashed with `qmc nvm write`, given `input`: the first text it generates.
  std::string Firmware(const fs::path& image, const std::string& input) {
    const fs::path nvm = dir_ / ("nvm_" + image.stem().string());
    const CliRun flashed = Qmc("nvm write " + image.string() + " " + nvm.string(), dir_);
    EXPECT_EQ(flashed.exit_code, 0) << flashed.err;
    const fs::path in = dir_ / "link_in.txt", out = dir_ / "link_out.txt", err = dir_ / "fw_err.txt";
    WriteText(in, input);
    const int status = std::system(("timeout 120 " QMC_FW_EMU " --nvm " + nvm.string() + " <" + in.string() + " >" +
                                    out.string() + " 2>" + err.string())
                                       .c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(err);
    const std::string console = Slurp(out), text = qmc::testing::GeneratedText(console);
    EXPECT_NE(text, "") << console;
    return text;
  }

  fs::path dir_;
  fs::path tokenizer_;
};

std::vector<int> IdsIn(const std::string& text) {
  std::vector<int> ids;
  const std::regex piece(R"(\[(\d+)\])");
  for (std::sregex_iterator it(text.begin(), text.end(), piece), end; it != end; ++it) {
    ids.push_back(std::stoi((*it)[1]));
  }
  return ids;
}

// `qmc run` from BOS, greedy, prints the tokens the engine chooses in-process.
TEST_F(FamilyCli, PhiQmcRunIsTheEnginesGreedyRun) {
  const fs::path model = WritePhi();
  for (const std::string scheme : {"f32", "paper-3mlc"}) {
    SCOPED_TRACE(scheme);
    const fs::path image = Pack(model, scheme);
    const std::vector<uint8_t> bytes = host::ReadWholeFile(image);
    const image::ImageView view = image::ImageView::OpenFile(bytes).value();
    std::vector<uint8_t> arena(Engine::ArenaBytes(view.model(), view.detail(), kPositions));
    std::vector<uint8_t> kv(Engine::KvBytes(view.model(), view.detail(), kPositions));
    Engine engine;
    ASSERT_TRUE(engine.Init(view, arena, kv).ok());
    std::vector<int> ids;
    std::string text;
    uint32_t token = 1;  // BOS
    for (uint32_t pos = 0; pos < kPositions; ++pos) {
      const float* logits = engine.Forward(token, pos);
      ASSERT_NE(logits, nullptr);
      token = static_cast<uint32_t>(std::max_element(logits, logits + view.model().vocab_size) - logits);
      ids.push_back(static_cast<int>(token));
      text += "[" + std::to_string(token) + "]";
    }
    const std::string printed = Run(image, "-n " + std::to_string(kPositions) + " -t 0");
    EXPECT_EQ(printed, text + "\n");
    EXPECT_EQ(IdsIn(printed), ids);
  }
}

// The firmware on the emu board prints what `qmc run` prints, prompt included.
TEST_F(FamilyCli, PhiFirmwareTextIsQmcRunsText) {
  const fs::path model = WritePhi();
  for (const std::string scheme : {"f32", "paper-3mlc"}) {
    SCOPED_TRACE(scheme);
    const fs::path image = Pack(model, scheme);
    const std::string host = Run(image, "-p '[5]' -n 60 -t 0");
    EXPECT_EQ(IdsIn(host).size(), 59u);  // " [5]" as 4 tokens after BOS (the space printed as nothing), then greedy
    EXPECT_EQ(Firmware(image, "steps=60 [5]\n"), host);
  }
}

// A config the engine cannot run as its reference does is refused by name:
// exit 1, one line on stderr, and no image or temporary file left behind.
TEST_F(FamilyCli, PackRefusesUnsupportedRopeScalingModelTypesAndTheOldPhiLayout) {
  const Spec llama = TinyLlama32();
  const HfWeights llama_weights = RandomWeights(llama, 6);
  HfWeights fused = RandomWeights(TinyPhi(), 7);
  fused["transformer.h.0.mixer.Wqkv.weight"] = {{144, 48}, std::vector<float>(144 * 48, 0.0f)};
  struct Case {
    json config;
    const HfWeights* weights;
    std::string word;
  };
  std::vector<Case> cases;
  for (const json& scaling : {json{{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32}},
                              json{{"type", "dynamic"}, {"factor", 2.0}}}) {
    json config = ConfigJson(llama);
    config["rope_scaling"] = scaling;
    cases.push_back({config, &llama_weights, scaling.contains("type") ? "'dynamic'" : "'yarn'"});
  }
  json config = ConfigJson(llama);
  config["model_type"] = "gpt_neox";
  cases.push_back({config, &llama_weights, "model_type 'gpt_neox'"});
  config = ConfigJson(TinyPhi());
  config["model_type"] = "phi-msft";
  cases.push_back({config, &fused, "pre-transformers-4.37"});
  cases.push_back({ConfigJson(TinyPhi()), &fused, "pre-transformers-4.37"});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.word);
    const fs::path model = dir_ / "model";
    fs::remove_all(model);
    fs::create_directories(model);
    WriteHfDirectory(model, c.config, *c.weights);
    const fs::path image = dir_ / "out.qmc";
    const CliRun r =
        Qmc("pack " + model.string() + " --tokenizer " + tokenizer_.string() + " -o " + image.string(), dir_);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(c.word), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      EXPECT_TRUE(name == "model" || name == "tok.bin" || name == "stdout.txt" || name == "stderr.txt")
          << "left behind: " << name;
    }
  }
}

}  // namespace
}  // namespace qmc::testing
