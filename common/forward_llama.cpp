// The Llama and Qwen2 layer (llama2.c run.c's forward()): pre-norm attention
// with RoPE and optional q/k/v biases, then a SwiGLU feed-forward block.
#include <cmath>

#include "common/engine.h"
#include "common/model_tensors.h"

namespace qmc {

using image::Role;

const float* Engine::ForwardLlama(uint32_t pos, uint32_t n) {
  const image::ModelConfig& c = config_;
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const Layer& layer = layers_[l];
    // Attention block: each position's key and value are cached before it attends.
    RmsNorm(xb_, x_, Tensor(layer, Role::kAttnNorm), c.dim, n);
    MatMul(layer, Role::kQ, xb_, q_, n);
    MatMul(layer, Role::kK, xb_, k_, n);
    MatMul(layer, Role::kV, xb_, v_, n);
    if ((c.flags & image::kModelQkvBias) != 0) {
      AddBias(q_, Tensor(layer, Role::kQBias), n);
      AddBias(k_, Tensor(layer, Role::kKBias), n);
      AddBias(v_, Tensor(layer, Role::kVBias), n);
    }
    Attend(l, pos, n);
    MatMul(layer, Role::kAttnOut, xb_, xb2_, n);
    for (uint32_t t = 0; t < n; ++t) {
      for (uint32_t i = 0; i < c.dim; ++i) x_[t][i] += xb2_[t][i];
    }

    // SwiGLU feed-forward block: down(silu(gate x) * up x).
    RmsNorm(xb_, x_, Tensor(layer, Role::kFfnNorm), c.dim, n);
    MatMul(layer, Role::kGate, xb_, hb_, n);
    MatMul(layer, Role::kUp, xb_, hb2_, n);
    for (uint32_t t = 0; t < n; ++t) {
      float* h = hb_[t];
      const float* up = hb2_[t];
      for (uint32_t i = 0; i < c.hidden_dim; ++i) h[i] = h[i] / (1.0f + expf(-h[i])) * up[i];
    }
    MatMul(layer, Role::kDown, hb_, xb2_, n);
    for (uint32_t t = 0; t < n; ++t) {
      for (uint32_t i = 0; i < c.dim; ++i) x_[t][i] += xb2_[t][i];
    }
  }
  RmsNorm(x_, x_, Tensor(globals_, Role::kOutputNorm), c.dim, n);
  return Logits(n);
}

}  // namespace qmc
