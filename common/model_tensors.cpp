#include "common/model_tensors.h"

#include <initializer_list>

namespace qmc::image {
namespace {

// Appends `text` to the NUL-terminated `out`; names are far shorter than the buffer.
void Append(char* out, const char* text) {
  uint32_t n = 0;
  while (out[n] != '\0') ++n;
  while (*text != '\0' && n + 1 < kTensorNameSize) out[n++] = *text++;
  out[n] = '\0';
}

void AppendNumber(char* out, uint32_t value) {
  char digits[11];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  char text[11];
  for (int i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
  text[n] = '\0';
  Append(out, text);
}

const char* NameOf(Role role) {
  switch (role) {
    case Role::kTokenEmbd: return "token_embd.weight";
    case Role::kMetaTokens: return "meta_tokens.weight";
    case Role::kOutputNorm: return "output_norm.weight";
    case Role::kOutputNormBias: return "output_norm.bias";
    case Role::kOutput: return "output.weight";
    case Role::kOutputBias: return "output.bias";
    case Role::kAttnNorm: return "attn_norm.weight";
    case Role::kAttnNormBias: return "attn_norm.bias";
    case Role::kQ: return "attn_q.weight";
    case Role::kK: return "attn_k.weight";
    case Role::kV: return "attn_v.weight";
    case Role::kQBias: return "attn_q.bias";
    case Role::kKBias: return "attn_k.bias";
    case Role::kVBias: return "attn_v.bias";
    case Role::kAttnOut: return "attn_output.weight";
    case Role::kAttnOutBias: return "attn_output.bias";
    case Role::kFfnNorm: return "ffn_norm.weight";
    case Role::kGate: return "ffn_gate.weight";
    case Role::kUp: return "ffn_up.weight";
    case Role::kUpBias: return "ffn_up.bias";
    case Role::kDown: return "ffn_down.weight";
    case Role::kDownBias: return "ffn_down.bias";
    case Role::kInProj: return "ssm_in.weight";
    case Role::kConv: return "ssm_conv1d.weight";
    case Role::kConvBias: return "ssm_conv1d.bias";
    case Role::kXProj: return "ssm_x.weight";
    case Role::kDtNorm: return "ssm_dt_norm.weight";
    case Role::kBNorm: return "ssm_b_norm.weight";
    case Role::kCNorm: return "ssm_c_norm.weight";
    case Role::kDtProj: return "ssm_dt.weight";
    case Role::kDtBias: return "ssm_dt.bias";
    case Role::kALog: return "ssm_a_log";
    case Role::kD: return "ssm_d";
    case Role::kAttnOutNorm: return "attn_out_norm.weight";
    case Role::kSsmOutNorm: return "ssm_out_norm.weight";
    case Role::kOutProj: return "ssm_out.weight";
    case Role::kCount: break;
  }
  return "";
}

// A family's tensors: those before the layers, those of every layer, those after.
struct RoleList {
  Role roles[24];
  uint32_t count = 0;
  void Add(Role role) { roles[count++] = role; }
};

struct Family {
  RoleList before, layer, after;
};

Family FamilyOf(const ModelConfig& c) {
  Family f;
  const bool shared = (c.flags & kModelSharedClassifier) != 0;
  f.before.Add(Role::kTokenEmbd);
  switch (static_cast<Arch>(c.arch)) {
    case Arch::kLlama:
    case Arch::kQwen2:
      for (Role r : {Role::kAttnNorm, Role::kQ, Role::kK, Role::kV}) f.layer.Add(r);
      if ((c.flags & kModelQkvBias) != 0) {
        for (Role r : {Role::kQBias, Role::kKBias, Role::kVBias}) f.layer.Add(r);
      }
      for (Role r : {Role::kAttnOut, Role::kFfnNorm, Role::kGate, Role::kUp, Role::kDown}) f.layer.Add(r);
      f.after.Add(Role::kOutputNorm);
      if (!shared) f.after.Add(Role::kOutput);
      break;
    case Arch::kPhi:
      for (Role r : {Role::kAttnNorm, Role::kAttnNormBias, Role::kQ, Role::kQBias, Role::kK, Role::kKBias, Role::kV,
                     Role::kVBias, Role::kAttnOut, Role::kAttnOutBias, Role::kUp, Role::kUpBias, Role::kDown,
                     Role::kDownBias}) {
        f.layer.Add(r);
      }
      f.after.Add(Role::kOutputNorm);
      f.after.Add(Role::kOutputNormBias);
      if (!shared) f.after.Add(Role::kOutput);
      f.after.Add(Role::kOutputBias);
      break;
    case Arch::kHymba:
      f.before.Add(Role::kMetaTokens);
      for (Role r : {Role::kAttnNorm, Role::kInProj, Role::kConv, Role::kConvBias, Role::kXProj, Role::kDtNorm,
                     Role::kBNorm, Role::kCNorm, Role::kDtProj, Role::kDtBias, Role::kALog, Role::kD,
                     Role::kAttnOutNorm, Role::kSsmOutNorm, Role::kOutProj, Role::kFfnNorm, Role::kGate, Role::kUp,
                     Role::kDown}) {
        f.layer.Add(r);
      }
      f.after.Add(Role::kOutputNorm);
      if (!shared) f.after.Add(Role::kOutput);
      break;
  }
  return f;
}

TensorRequirement Make(Role role, uint32_t layer, uint32_t rows, uint32_t cols, bool is_matrix) {
  TensorRequirement r{};
  if (layer != kNoLayer) {
    Append(r.name, "blk.");
    AppendNumber(r.name, layer);
    Append(r.name, ".");
  }
  Append(r.name, NameOf(role));
  r.rows = rows;
  r.cols = cols;
  r.is_matrix = is_matrix;
  r.layer = layer;
  r.role = role;
  return r;
}

TensorRequirement Shape(const ModelConfig& c, const ModelDetail& d, Role role, uint32_t layer) {
  const uint32_t q_dim = c.n_heads * c.head_dim;
  const uint32_t k_dim = c.n_kv_heads * c.head_dim;
  const uint32_t v_dim = c.n_kv_heads * d.value_head_dim;
  const uint32_t attn_out = c.n_heads * d.value_head_dim;
  auto matrix = [&](uint32_t rows, uint32_t cols) { return Make(role, layer, rows, cols, true); };
  auto exact = [&](uint32_t rows, uint32_t cols) { return Make(role, layer, rows, cols, false); };
  switch (role) {
    case Role::kTokenEmbd:
    case Role::kOutput: return matrix(c.vocab_size, c.dim);
    case Role::kMetaTokens: return exact(d.meta_tokens, c.dim);
    case Role::kOutputBias: return exact(1, c.vocab_size);
    case Role::kOutputNorm:
    case Role::kOutputNormBias:
    case Role::kAttnNorm:
    case Role::kAttnNormBias:
    case Role::kAttnOutBias:
    case Role::kFfnNorm:
    case Role::kDownBias: return exact(1, c.dim);
    case Role::kQ: return matrix(q_dim, c.dim);
    case Role::kK: return matrix(k_dim, c.dim);
    case Role::kV: return matrix(v_dim, c.dim);
    case Role::kQBias: return exact(1, q_dim);
    case Role::kKBias: return exact(1, k_dim);
    case Role::kVBias: return exact(1, v_dim);
    case Role::kAttnOut: return matrix(c.dim, attn_out);
    case Role::kGate:
    case Role::kUp: return matrix(c.hidden_dim, c.dim);
    case Role::kUpBias: return exact(1, c.hidden_dim);
    case Role::kDown: return matrix(c.dim, c.hidden_dim);
    case Role::kInProj:
      return matrix(q_dim + (OwnsKv(d, layer) ? k_dim + v_dim : 0) + 2 * d.ssm_inner, c.dim);
    case Role::kConv: return exact(d.ssm_inner, d.ssm_conv);
    case Role::kConvBias:
    case Role::kDtBias:
    case Role::kD:
    case Role::kSsmOutNorm: return exact(1, d.ssm_inner);
    case Role::kXProj: return matrix(d.ssm_dt_rank + 2 * d.ssm_state, d.ssm_inner);
    case Role::kDtNorm: return exact(1, d.ssm_dt_rank);
    case Role::kBNorm:
    case Role::kCNorm: return exact(1, d.ssm_state);
    case Role::kDtProj: return matrix(d.ssm_inner, d.ssm_dt_rank);
    case Role::kALog: return exact(d.ssm_inner, d.ssm_state);
    case Role::kAttnOutNorm: return exact(1, attn_out);
    case Role::kOutProj: return matrix(c.dim, d.ssm_inner);
    case Role::kCount: break;
  }
  return Make(role, layer, 0, 0, false);
}

bool IsHymba(const ModelConfig& c) { return c.arch == static_cast<uint32_t>(Arch::kHymba); }

}  // namespace

ModelDetail DefaultDetail(const ModelConfig& config) {
  ModelDetail d{};
  d.rope_dims = config.head_dim;
  d.rope_scaling = static_cast<uint32_t>(RopeScaling::kNone);
  d.value_head_dim = config.head_dim;
  for (uint32_t l = 0; l < kMaxLayers; ++l) {
    const bool used = l < config.n_layers;
    d.layer_flags[l] = used ? kLayerGlobalAttention : 0;
    d.kv_source[l] = used ? static_cast<uint8_t>(l) : 0;
  }
  return d;
}

uint32_t RequiredTensorCount(const ModelConfig& config, const ModelDetail&) {
  const Family f = FamilyOf(config);
  return f.before.count + config.n_layers * f.layer.count + f.after.count;
}

TensorRequirement RequiredTensor(const ModelConfig& c, const ModelDetail& d, uint32_t index) {
  const Family f = FamilyOf(c);
  if (index < f.before.count) return Shape(c, d, f.before.roles[index], kNoLayer);
  index -= f.before.count;
  if (index < c.n_layers * f.layer.count) {
    return Shape(c, d, f.layer.roles[index % f.layer.count], index / f.layer.count);
  }
  return Shape(c, d, f.after.roles[index - c.n_layers * f.layer.count], kNoLayer);
}

Status ValidateModelConfig(const ModelConfig& c) {
  constexpr uint32_t kLimit = 1u << 20;  // no dimension of an edge model comes near this
  const uint32_t dims[] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.seq_len};
  for (uint32_t d : dims) {
    if (d == 0 || d > kLimit) return Error(StatusCode::kInvalidValue, "model dimension is zero or implausibly large");
  }
  if (c.arch > static_cast<uint32_t>(Arch::kHymba)) return Error(StatusCode::kInvalidValue, "unknown model architecture");
  if (c.n_heads % c.n_kv_heads != 0) return Error(StatusCode::kInvalidValue, "n_heads is not a multiple of n_kv_heads");
  if (c.head_dim % 2 != 0) return Error(StatusCode::kInvalidValue, "head_dim is odd (RoPE rotates pairs)");
  if (c.n_layers > kMaxLayers) return Error(StatusCode::kInvalidValue, "more layers than an image describes (128)");
  if ((c.flags & ~(kModelSharedClassifier | kModelQkvBias)) != 0) return Error(StatusCode::kInvalidValue, "unknown model flags");
  if ((c.flags & kModelQkvBias) != 0 && c.arch > static_cast<uint32_t>(Arch::kQwen2)) {
    return Error(StatusCode::kInvalidValue, "the q/k/v bias flag is for Llama and Qwen2 (Phi always has biases)");
  }
  if (!(c.rope_theta > 0.0f) || c.rope_theta > 1e30f) return Error(StatusCode::kInvalidValue, "rope_theta is not a positive number");
  if (!(c.norm_eps > 0.0f) || c.norm_eps > 1.0f) return Error(StatusCode::kInvalidValue, "norm_eps is not in (0, 1]");
  return Status::Ok();
}

Status ValidateModelDetail(const ModelConfig& c, const ModelDetail& d) {
  constexpr uint32_t kLimit = 1u << 20;
  if (d.rope_dims < 2 || d.rope_dims > c.head_dim || d.rope_dims % 2 != 0) {
    return Error(StatusCode::kInvalidValue, "rope_dims is not an even number in 2..head_dim");
  }
  if (d.rope_scaling == static_cast<uint32_t>(RopeScaling::kLlama3)) {
    if (!(d.rope_factor >= 1.0f && d.rope_factor < 1e6f) || !(d.rope_low_freq_factor > 0.0f) ||
        !(d.rope_high_freq_factor > d.rope_low_freq_factor) || d.rope_high_freq_factor > 1e6f ||
        d.rope_original_context == 0) {
      return Error(StatusCode::kInvalidValue, "llama3 RoPE scaling parameters are out of range");
    }
  } else if (d.rope_scaling != static_cast<uint32_t>(RopeScaling::kNone)) {
    return Error(StatusCode::kInvalidValue, "unknown RoPE scaling");
  }
  if (d.value_head_dim == 0 || d.value_head_dim > kLimit || d.attn_window > kLimit || d.meta_tokens > 4096) {
    return Error(StatusCode::kInvalidValue, "value_head_dim, attn_window or meta_tokens is out of range");
  }
  const bool hymba = IsHymba(c);
  const bool has_ssm = d.ssm_inner != 0 || d.ssm_state != 0 || d.ssm_conv != 0 || d.ssm_dt_rank != 0;
  if (hymba) {
    const uint32_t ssm[] = {d.ssm_inner, d.ssm_state, d.ssm_dt_rank};
    for (uint32_t v : ssm) {
      if (v == 0 || v > kLimit) return Error(StatusCode::kInvalidValue, "SSM dimension is zero or implausibly large");
    }
    if (d.ssm_conv == 0 || d.ssm_conv > 16) return Error(StatusCode::kInvalidValue, "SSM conv width is not in 1..16");
    if (c.n_heads * d.value_head_dim != d.ssm_inner) {
      return Error(StatusCode::kInvalidValue, "attention output (n_heads x value_head_dim) is not as wide as the SSM's");
    }
  } else if (has_ssm || d.meta_tokens != 0 || d.value_head_dim != c.head_dim) {
    return Error(StatusCode::kInvalidValue, "SSM, meta tokens or wide value heads outside a Hymba model");
  }
  for (uint32_t l = 0; l < kMaxLayers; ++l) {
    if (l >= c.n_layers) {
      if (d.layer_flags[l] != 0 || d.kv_source[l] != 0) {
        return Error(StatusCode::kInvalidValue, "model detail describes a layer past n_layers");
      }
      continue;
    }
    if ((d.layer_flags[l] & ~kLayerGlobalAttention) != 0) return Error(StatusCode::kInvalidValue, "unknown layer flags");
    const uint32_t source = d.kv_source[l];
    if (source > l || !OwnsKv(d, source)) {
      return Error(StatusCode::kInvalidValue, "a layer shares the KV cache of a later layer or of one without a cache");
    }
    if (!hymba && source != l) return Error(StatusCode::kInvalidValue, "KV sharing outside a Hymba model");
    if (source != l && (d.layer_flags[l] & kLayerGlobalAttention) != (d.layer_flags[source] & kLayerGlobalAttention)) {
      return Error(StatusCode::kInvalidValue, "a layer shares the KV cache of a layer with another attention span");
    }
  }
  return Status::Ok();
}

}  // namespace qmc::image
