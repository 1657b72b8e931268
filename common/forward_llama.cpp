// The Llama and Qwen2 layer (llama2.c run.c's forward()): pre-norm attention
// with RoPE and optional q/k/v biases, then a SwiGLU feed-forward block.
#include <cmath>

#include "common/engine.h"
#include "common/model_tensors.h"

namespace qmc {

using image::Role;

const float* Engine::ForwardLlama(uint32_t pos) {
  const image::ModelConfig& c = config_;
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const Layer& layer = layers_[l];
    // Attention block: this position's key and value are cached first.
    RmsNorm(xb_, x_, Tensor(layer, Role::kAttnNorm), c.dim);
    MatVec(Tensor(layer, Role::kQ), xb_, q_);
    MatVec(Tensor(layer, Role::kK), xb_, k_);
    MatVec(Tensor(layer, Role::kV), xb_, v_);
    if ((c.flags & image::kModelQkvBias) != 0) {
      AddBias(q_, Tensor(layer, Role::kQBias));
      AddBias(k_, Tensor(layer, Role::kKBias));
      AddBias(v_, Tensor(layer, Role::kVBias));
    }
    Rotate(q_, c.n_heads);
    Rotate(k_, c.n_kv_heads);
    StoreKv(l, pos);
    Attention(l, pos);
    MatVec(Tensor(layer, Role::kAttnOut), xb_, xb2_);
    for (uint32_t i = 0; i < c.dim; ++i) x_[i] += xb2_[i];

    // SwiGLU feed-forward block: down(silu(gate x) * up x).
    RmsNorm(xb_, x_, Tensor(layer, Role::kFfnNorm), c.dim);
    MatVec(Tensor(layer, Role::kGate), xb_, hb_);
    MatVec(Tensor(layer, Role::kUp), xb_, hb2_);
    for (uint32_t i = 0; i < c.hidden_dim; ++i) hb_[i] = hb_[i] / (1.0f + expf(-hb_[i])) * hb2_[i];
    MatVec(Tensor(layer, Role::kDown), hb_, xb2_);
    for (uint32_t i = 0; i < c.dim; ++i) x_[i] += xb2_[i];
  }
  RmsNorm(x_, x_, Tensor(globals_, Role::kOutputNorm), c.dim);
  return Logits(x_);
}

}  // namespace qmc
