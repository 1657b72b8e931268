// The Hymba layer (NVIDIA's modeling_hymba.py, HymbaDecoderLayer with one
// SSM and one expert; its decode step): attention heads and a Mamba SSM run
// side by side on one input projection, their normed outputs are averaged
// and projected back, then a SwiGLU feed-forward block. Global layers attend
// over every position; the others over the meta tokens and a sliding window,
// and most share an earlier layer's KV cache. All in f32, where the
// reference computes in bf16.
#include <cmath>
#include <cstring>

#include "common/dequantize.h"
#include "common/engine.h"
#include "common/model_tensors.h"
#include "common/tensor_traffic.h"

namespace qmc {

using image::Role;

namespace {

float Silu(float x) { return x / (1.0f + expf(-x)); }

// As the SSM kernel: above 20 softplus(x) is x to float precision.
float Softplus(float x) { return x <= 20.0f ? log1pf(expf(x)) : x; }

}  // namespace

// Position 0: a zeroed recurrent state, then the meta tokens at cache
// positions 0..meta_tokens-1, a batch at a time, each a full pass through
// the layers (their keys and values enter the caches, they drive the conv
// and SSM state) whose output is dropped.
void Engine::RunMetaTokens() {
  const size_t conv_floats = static_cast<size_t>(config_.n_layers) * detail_.ssm_inner * (detail_.ssm_conv - 1);
  const size_t ssm_floats = static_cast<size_t>(config_.n_layers) * detail_.ssm_inner * detail_.ssm_state;
  std::memset(conv_state_, 0, conv_floats * sizeof(float));
  std::memset(ssm_state_, 0, ssm_floats * sizeof(float));
  traffic_.Write(image::Window::kDram, (conv_floats + ssm_floats) * sizeof(float));
  const image::TensorEntry meta = Tensor(globals_, Role::kMetaTokens);
  for (uint32_t first = 0; first < detail_.meta_tokens; first += batch_) {
    const uint32_t n = detail_.meta_tokens - first < batch_ ? detail_.meta_tokens - first : batch_;
    for (uint32_t t = 0; t < n; ++t) {
      image::DequantizeRow(*image_, meta, first + t, x_[t]);
      AddRowTraffic(*image_, meta, first + t, 1, traffic_);
      SetRope(t, first + t);
    }
    HymbaLayers(first, n);
  }
}

const float* Engine::ForwardHymba(uint32_t pos, uint32_t n) {
  HymbaLayers(pos, n);
  RmsNorm(x_, x_, Tensor(globals_, Role::kOutputNorm), config_.dim, n);
  return Logits(n);
}

void Engine::HymbaLayers(uint32_t pos, uint32_t n) {
  for (uint32_t l = 0; l < config_.n_layers; ++l) {
    HymbaMixer(l, pos, n);
    HymbaFeedForward(layers_[l], n);
  }
}

// x += out_proj((norm(attention) + norm(ssm)) / 2), both branches fed by
// in_proj(norm(x)) = [q | k | v | xs | z]; a layer that shares an earlier
// layer's KV cache has no k and v rows and attends over that cache as the
// earlier layer left it.
void Engine::HymbaMixer(uint32_t l, uint32_t pos, uint32_t n) {
  const image::ModelConfig& c = config_;
  const Layer& layer = layers_[l];
  const uint32_t inner = detail_.ssm_inner;
  const bool owner = image::OwnsKv(detail_, l);
  RmsNorm(xb_, x_, Tensor(layer, Role::kAttnNorm), c.dim, n);
  MatMul(layer, Role::kInProj, xb_, in_proj_, n);
  for (uint32_t t = 0; t < n; ++t) {
    const float* next = in_proj_[t];
    std::memcpy(q_[t], next, q_dim_ * sizeof(float));
    if (owner) {
      std::memcpy(k_[t], next + q_dim_, kv_dim_ * sizeof(float));
      std::memcpy(v_[t], next + q_dim_ + kv_dim_, value_dim_ * sizeof(float));
    }
  }

  // Attention: no output projection; n_heads x value_head_dim = ssm_inner wide.
  Attend(l, pos, n);

  SsmStep(l, n);

  RmsNorm(xb_, xb_, Tensor(layer, Role::kAttnOutNorm), inner, n);
  RmsNorm(ssm_y_, ssm_y_, Tensor(layer, Role::kSsmOutNorm), inner, n);
  for (uint32_t t = 0; t < n; ++t) {
    for (uint32_t i = 0; i < inner; ++i) xb_[t][i] = (xb_[t][i] + ssm_y_[t][i]) * 0.5f;
  }
  MatMul(layer, Role::kOutProj, xb_, xb2_, n);
  for (uint32_t t = 0; t < n; ++t) {
    for (uint32_t i = 0; i < c.dim; ++i) x_[t][i] += xb2_[t][i];
  }
}

// Mamba steps on in_proj's xs, gated by its z, into ssm_y_, token by token
// where the state carries (the causal depthwise conv, then the selective
// state update: mamba_ssm's selective_state_update), the projections between
// them for all n tokens at once.
void Engine::SsmStep(uint32_t l, uint32_t n) {
  const image::ModelDetail& d = detail_;
  const Layer& layer = layers_[l];
  const uint32_t inner = d.ssm_inner, n_state = d.ssm_state;
  const uint32_t xs_at = q_dim_ + (image::OwnsKv(d, l) ? kv_dim_ + value_dim_ : 0);
  // The conv state is the previous ssm_conv - 1 inputs of each channel,
  // oldest first. HF's cache keeps ssm_conv columns, but its update shifts
  // the oldest out before the convolution reads any, so it is never used.
  const uint32_t past_count = d.ssm_conv - 1;
  float* conv_state = conv_state_ + static_cast<size_t>(l) * inner * past_count;
  float* ssm_state = ssm_state_ + static_cast<size_t>(l) * inner * n_state;
  const size_t state_bytes = static_cast<size_t>(inner) * (past_count + n_state) * sizeof(float);
  traffic_.Read(image::Window::kDram, state_bytes);

  // u = silu(conv bias + the conv over the past inputs and xs).
  const float* weight = Params(Tensor(layer, Role::kConv));
  const float* bias = Params(Tensor(layer, Role::kConvBias));
  for (uint32_t t = 0; t < n; ++t) {
    const float* xs = in_proj_[t] + xs_at;
    for (uint32_t ch = 0; ch < inner; ++ch) {
      float* past = conv_state + static_cast<size_t>(ch) * past_count;
      const float* w = weight + static_cast<size_t>(ch) * d.ssm_conv;
      float sum = bias[ch];
      for (uint32_t j = 0; j < past_count; ++j) sum += w[j] * past[j];
      sum += w[past_count] * xs[ch];
      for (uint32_t j = 0; j + 1 < past_count; ++j) past[j] = past[j + 1];
      if (past_count != 0) past[past_count - 1] = xs[ch];
      ssm_u_[t][ch] = Silu(sum);
    }
  }

  // x_proj(u) = [dt | B | C], each RMS-normed with its own weight.
  MatMul(layer, Role::kXProj, ssm_u_, ssm_params_, n);
  const Rows dt{ssm_params_.data, ssm_params_.stride};
  const Rows b{ssm_params_.data + d.ssm_dt_rank, ssm_params_.stride};
  const Rows cc{ssm_params_.data + d.ssm_dt_rank + n_state, ssm_params_.stride};
  RmsNorm(dt, dt, Tensor(layer, Role::kDtNorm), d.ssm_dt_rank, n);
  RmsNorm(b, b, Tensor(layer, Role::kBNorm), n_state, n);
  RmsNorm(cc, cc, Tensor(layer, Role::kCNorm), n_state, n);
  // dt_proj's bias is added inside the softplus, not by the projection.
  MatMul(layer, Role::kDtProj, dt, ssm_dt_, n);

  // Per channel: delta = softplus(dt + bias); s = s·exp(delta·A) + delta·B·u
  // with A = -exp(A_log); y = s·C + D·u, gated by silu(z).
  const float* dt_bias = Params(Tensor(layer, Role::kDtBias));
  const float* a_log = Params(Tensor(layer, Role::kALog));
  const float* skip = Params(Tensor(layer, Role::kD));
  for (uint32_t t = 0; t < n; ++t) {
    const float* z = in_proj_[t] + xs_at + inner;
    for (uint32_t ch = 0; ch < inner; ++ch) {
      const float delta = Softplus(ssm_dt_[t][ch] + dt_bias[ch]);
      const float u = ssm_u_[t][ch];
      float* s = ssm_state + static_cast<size_t>(ch) * n_state;
      const float* a = a_log + static_cast<size_t>(ch) * n_state;
      float y = 0.0f;
      for (uint32_t k = 0; k < n_state; ++k) {
        s[k] = s[k] * expf(-expf(a[k]) * delta) + delta * b[t][k] * u;
        y += s[k] * cc[t][k];
      }
      ssm_y_[t][ch] = (y + skip[ch] * u) * Silu(z[ch]);
    }
  }
  traffic_.Write(image::Window::kDram, state_bytes);
}

// x += down(silu(gate h) * up h), h = norm(x) (pre_moe_layernorm; one expert).
void Engine::HymbaFeedForward(const Layer& layer, uint32_t n) {
  const image::ModelConfig& c = config_;
  RmsNorm(xb_, x_, Tensor(layer, Role::kFfnNorm), c.dim, n);
  MatMul(layer, Role::kGate, xb_, hb_, n);
  MatMul(layer, Role::kUp, xb_, hb2_, n);
  for (uint32_t t = 0; t < n; ++t) {
    for (uint32_t i = 0; i < c.hidden_dim; ++i) hb_[t][i] = Silu(hb_[t][i]) * hb2_[t][i];
  }
  MatMul(layer, Role::kDown, hb_, xb2_, n);
  for (uint32_t t = 0; t < n; ++t) {
    for (uint32_t i = 0; i < c.dim; ++i) x_[t][i] += xb2_[t][i];
  }
}

}  // namespace qmc
