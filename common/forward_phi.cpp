// The Phi layer (transformers PhiDecoderLayer): one LayerNorm feeds attention
// (biased q/k/v, partial RoPE, biased dense) and a gelu_new MLP in parallel,
// and both add to the residual: x = a + m + x.
#include <cmath>

#include "common/engine.h"
#include "common/model_tensors.h"

namespace qmc {

using image::Role;

const float* Engine::ForwardPhi(uint32_t pos) {
  const image::ModelConfig& c = config_;
  constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const Layer& layer = layers_[l];
    LayerNorm(xb_, x_, Tensor(layer, Role::kAttnNorm), Tensor(layer, Role::kAttnNormBias), c.dim);
    MatVec(Tensor(layer, Role::kQ), xb_, q_);
    AddBias(q_, Tensor(layer, Role::kQBias));
    MatVec(Tensor(layer, Role::kK), xb_, k_);
    AddBias(k_, Tensor(layer, Role::kKBias));
    MatVec(Tensor(layer, Role::kV), xb_, v_);
    AddBias(v_, Tensor(layer, Role::kVBias));
    // fc1 reads the normed input before Attention overwrites xb_.
    MatVec(Tensor(layer, Role::kUp), xb_, hb_);
    AddBias(hb_, Tensor(layer, Role::kUpBias));

    Rotate(q_, c.n_heads);
    Rotate(k_, c.n_kv_heads);
    StoreKv(l, pos);
    Attention(l, pos);
    MatVec(Tensor(layer, Role::kAttnOut), xb_, xb2_);
    AddBias(xb2_, Tensor(layer, Role::kAttnOutBias));

    // gelu_new (the tanh approximation), then fc2 into the free xb_.
    for (uint32_t i = 0; i < c.hidden_dim; ++i) {
      const float u = hb_[i];
      hb_[i] = 0.5f * u * (1.0f + tanhf(kSqrtTwoOverPi * (u + 0.044715f * u * u * u)));
    }
    MatVec(Tensor(layer, Role::kDown), hb_, xb_);
    AddBias(xb_, Tensor(layer, Role::kDownBias));
    for (uint32_t i = 0; i < c.dim; ++i) x_[i] = (xb2_[i] + xb_[i]) + x_[i];
  }
  LayerNorm(x_, x_, Tensor(globals_, Role::kOutputNorm), Tensor(globals_, Role::kOutputNormBias), c.dim);
  return Logits(x_);
}

}  // namespace qmc
