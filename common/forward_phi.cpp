// The Phi layer (transformers PhiDecoderLayer): one LayerNorm feeds attention
// (biased q/k/v, partial RoPE, biased dense) and a gelu_new MLP in parallel,
// and both add to the residual: x = a + m + x.
#include <cmath>

#include "common/engine.h"
#include "common/model_tensors.h"

namespace qmc {

using image::Role;

const float* Engine::ForwardPhi(uint32_t pos, uint32_t n) {
  const image::ModelConfig& c = config_;
  constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const Layer& layer = layers_[l];
    LayerNorm(xb_, x_, Tensor(layer, Role::kAttnNorm), Tensor(layer, Role::kAttnNormBias), n);
    MatMul(layer, Role::kQ, xb_, q_, n);
    AddBias(q_, Tensor(layer, Role::kQBias), n);
    MatMul(layer, Role::kK, xb_, k_, n);
    AddBias(k_, Tensor(layer, Role::kKBias), n);
    MatMul(layer, Role::kV, xb_, v_, n);
    AddBias(v_, Tensor(layer, Role::kVBias), n);
    // fc1 reads the normed input before Attention overwrites xb_.
    MatMul(layer, Role::kUp, xb_, hb_, n);
    AddBias(hb_, Tensor(layer, Role::kUpBias), n);

    Attend(l, pos, n);
    MatMul(layer, Role::kAttnOut, xb_, xb2_, n);
    AddBias(xb2_, Tensor(layer, Role::kAttnOutBias), n);

    // gelu_new (the tanh approximation), then fc2 into the free xb_.
    for (uint32_t t = 0; t < n; ++t) {
      float* h = hb_[t];
      for (uint32_t i = 0; i < c.hidden_dim; ++i) {
        const float u = h[i];
        h[i] = 0.5f * u * (1.0f + tanhf(kSqrtTwoOverPi * (u + 0.044715f * u * u * u)));
      }
    }
    MatMul(layer, Role::kDown, hb_, xb_, n);
    AddBias(xb_, Tensor(layer, Role::kDownBias), n);
    for (uint32_t t = 0; t < n; ++t) {
      for (uint32_t i = 0; i < c.dim; ++i) x_[t][i] = (xb2_[t][i] + xb_[t][i]) + x_[t][i];
    }
  }
  LayerNorm(x_, x_, Tensor(globals_, Role::kOutputNorm), Tensor(globals_, Role::kOutputNormBias), n);
  return Logits(n);
}

}  // namespace qmc
