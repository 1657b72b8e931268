#include "host/rope_permutation.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/model_tensors.h"

namespace qmc::host {

void RotateHalfToInterleaved(std::vector<float>& data, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dims) {
  const size_t rows = static_cast<size_t>(n_heads) * head_dim;
  if (rope_dims % 2 != 0 || rope_dims == 0 || rope_dims > head_dim || rows == 0 || data.size() % rows != 0) {
    throw std::invalid_argument(
        "RotateHalfToInterleaved: data does not hold n_heads * head_dim rows, or rope_dims is not even in 2..head_dim");
  }
  const size_t row_size = data.size() / rows;
  const size_t half = rope_dims / 2;
  std::vector<float> out = data;  // the rows past rope_dims keep their place
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
      RotateHalfToInterleaved(it->second.data, is_q ? c.n_heads : c.n_kv_heads, c.head_dim,
                              checkpoint.detail.rope_dims);
    }
  }
}

void HymbaInProjToInterleaved(Checkpoint& checkpoint) {
  const image::ModelConfig& c = checkpoint.config;
  const image::ModelDetail& d = checkpoint.detail;
  const size_t q_rows = static_cast<size_t>(c.n_heads) * c.head_dim;
  const size_t k_rows = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  for (uint32_t layer = 0; layer < c.n_layers; ++layer) {
    Tensor& in_proj = checkpoint.tensors.at("blk." + std::to_string(layer) + ".ssm_in.weight");
    const bool owner = image::OwnsKv(d, layer);
    if (in_proj.rows < q_rows + (owner ? k_rows : 0)) {
      throw std::invalid_argument("HymbaInProjToInterleaved: in_proj has fewer rows than q and k");
    }
    auto permute = [&](size_t first_row, size_t rows, uint32_t heads) {
      const auto begin = in_proj.data.begin() + static_cast<std::ptrdiff_t>(first_row * in_proj.cols);
      std::vector<float> block(begin, begin + static_cast<std::ptrdiff_t>(rows * in_proj.cols));
      RotateHalfToInterleaved(block, heads, c.head_dim, d.rope_dims);
      std::copy(block.begin(), block.end(), begin);
    };
    permute(0, q_rows, c.n_heads);
    if (owner) permute(q_rows, k_rows, c.n_kv_heads);
  }
}

}  // namespace qmc::host
