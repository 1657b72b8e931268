#include "common/model_tensors.h"

namespace qmc::image {
namespace {

enum class Kind { kAttnNorm, kQ, kK, kV, kQBias, kKBias, kVBias, kAttnOut, kFfnNorm, kGate, kUp, kDown };

constexpr Kind kLayerKindsNoBias[] = {Kind::kAttnNorm, Kind::kQ,       Kind::kK,    Kind::kV,
                                      Kind::kAttnOut,  Kind::kFfnNorm, Kind::kGate, Kind::kUp,
                                      Kind::kDown};
constexpr Kind kLayerKindsBias[] = {Kind::kAttnNorm, Kind::kQ,       Kind::kK,       Kind::kV,
                                    Kind::kQBias,    Kind::kKBias,   Kind::kVBias,   Kind::kAttnOut,
                                    Kind::kFfnNorm,  Kind::kGate,    Kind::kUp,      Kind::kDown};

const char* Suffix(Kind kind) {
  switch (kind) {
    case Kind::kAttnNorm: return "attn_norm.weight";
    case Kind::kQ: return "attn_q.weight";
    case Kind::kK: return "attn_k.weight";
    case Kind::kV: return "attn_v.weight";
    case Kind::kQBias: return "attn_q.bias";
    case Kind::kKBias: return "attn_k.bias";
    case Kind::kVBias: return "attn_v.bias";
    case Kind::kAttnOut: return "attn_output.weight";
    case Kind::kFfnNorm: return "ffn_norm.weight";
    case Kind::kGate: return "ffn_gate.weight";
    case Kind::kUp: return "ffn_up.weight";
    case Kind::kDown: return "ffn_down.weight";
  }
  return "";
}

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

TensorRequirement Make(const char* name, uint32_t rows, uint32_t cols, bool is_matrix) {
  TensorRequirement r{};
  Append(r.name, name);
  r.rows = rows;
  r.cols = cols;
  r.is_matrix = is_matrix;
  return r;
}

bool HasBias(const ModelConfig& c) { return (c.flags & kModelQkvBias) != 0; }
bool Shared(const ModelConfig& c) { return (c.flags & kModelSharedClassifier) != 0; }
uint32_t PerLayer(const ModelConfig& c) { return HasBias(c) ? 12u : 9u; }

}  // namespace

uint32_t RequiredTensorCount(const ModelConfig& config) {
  return 1u + config.n_layers * PerLayer(config) + 1u + (Shared(config) ? 0u : 1u);
}

TensorRequirement RequiredTensor(const ModelConfig& c, uint32_t index) {
  if (index == 0) return Make("token_embd.weight", c.vocab_size, c.dim, true);
  const uint32_t layer_tensors = c.n_layers * PerLayer(c);
  if (index == 1 + layer_tensors) return Make("output_norm.weight", 1, c.dim, false);
  if (index == 2 + layer_tensors) return Make("output.weight", c.vocab_size, c.dim, true);

  const uint32_t layer = (index - 1) / PerLayer(c);
  const Kind kind = HasBias(c) ? kLayerKindsBias[(index - 1) % PerLayer(c)]
                               : kLayerKindsNoBias[(index - 1) % PerLayer(c)];
  const uint32_t q_dim = c.n_heads * c.head_dim;
  const uint32_t kv_dim = c.n_kv_heads * c.head_dim;
  uint32_t rows = 1, cols = c.dim;
  bool is_matrix = true;
  switch (kind) {
    case Kind::kAttnNorm:
    case Kind::kFfnNorm: is_matrix = false; break;
    case Kind::kQ: rows = q_dim; break;
    case Kind::kK:
    case Kind::kV: rows = kv_dim; break;
    case Kind::kQBias: cols = q_dim; is_matrix = false; break;
    case Kind::kKBias:
    case Kind::kVBias: cols = kv_dim; is_matrix = false; break;
    case Kind::kAttnOut: rows = c.dim; cols = q_dim; break;
    case Kind::kGate:
    case Kind::kUp: rows = c.hidden_dim; break;
    case Kind::kDown: rows = c.dim; cols = c.hidden_dim; break;
  }
  TensorRequirement r = Make("blk.", rows, cols, is_matrix);
  AppendNumber(r.name, layer);
  Append(r.name, ".");
  Append(r.name, Suffix(kind));
  return r;
}

Status ValidateModelConfig(const ModelConfig& c) {
  constexpr uint32_t kLimit = 1u << 20;  // no dimension of an edge model comes near this
  const uint32_t dims[] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.seq_len};
  for (uint32_t d : dims) {
    if (d == 0 || d > kLimit) return Error(StatusCode::kInvalidValue, "model dimension is zero or implausibly large");
  }
  if (c.arch > static_cast<uint32_t>(Arch::kQwen2)) return Error(StatusCode::kInvalidValue, "unknown model architecture");
  if (c.n_heads % c.n_kv_heads != 0) return Error(StatusCode::kInvalidValue, "n_heads is not a multiple of n_kv_heads");
  if (c.head_dim % 2 != 0) return Error(StatusCode::kInvalidValue, "head_dim is odd (RoPE rotates pairs)");
  if (c.n_layers > 1000) return Error(StatusCode::kInvalidValue, "implausible layer count");
  if ((c.flags & ~(kModelSharedClassifier | kModelQkvBias)) != 0) return Error(StatusCode::kInvalidValue, "unknown model flags");
  if (!(c.rope_theta > 0.0f) || c.rope_theta > 1e30f) return Error(StatusCode::kInvalidValue, "rope_theta is not a positive number");
  if (!(c.norm_eps > 0.0f) || c.norm_eps > 1.0f) return Error(StatusCode::kInvalidValue, "norm_eps is not in (0, 1]");
  return Status::Ok();
}

}  // namespace qmc::image
