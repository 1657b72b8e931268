#include "host/rope_permutation.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qmc::host {

void RotateHalfToInterleaved(std::vector<float>& data, uint32_t n_heads, uint32_t head_dim) {
  const size_t rows = static_cast<size_t>(n_heads) * head_dim;
  if (head_dim % 2 != 0 || rows == 0 || data.size() % rows != 0) {
    throw std::invalid_argument("RotateHalfToInterleaved: data does not hold n_heads * head_dim rows of even head_dim");
  }
  const size_t row_size = data.size() / rows;
  const size_t half = head_dim / 2;
  std::vector<float> out(data.size());
  for (size_t h = 0; h < n_heads; ++h) {
    for (size_t i = 0; i < 2; ++i) {
      for (size_t j = 0; j < half; ++j) {
        const size_t from = h * head_dim + i * half + j;
        const size_t to = h * head_dim + 2 * j + i;
        std::copy_n(data.begin() + from * row_size, row_size, out.begin() + to * row_size);
      }
    }
  }
  data = std::move(out);
}

void RotateHalfToInterleaved(Checkpoint& checkpoint) {
  const image::ModelConfig& c = checkpoint.config;
  for (uint32_t layer = 0; layer < c.n_layers; ++layer) {
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    for (const char* suffix : {"attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias"}) {
      const auto it = checkpoint.tensors.find(prefix + suffix);
      if (it == checkpoint.tensors.end()) continue;  // biases are optional
      const bool is_q = suffix[5] == 'q';
      RotateHalfToInterleaved(it->second.data, is_q ? c.n_heads : c.n_kv_heads, c.head_dim);
    }
  }
}

}  // namespace qmc::host
