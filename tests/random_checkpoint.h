// A synthetic one-layer Llama checkpoint whose weight matrices have chosen
// widths, for kernel tests and benchmarks: ffn_gate and ffn_up are
// hidden x dim, ffn_down dim x hidden; attention is one head of width 2
// and the vocabulary 8 tokens, so packing it is quick.
#pragma once

#include <random>
#include <vector>

#include "common/model_tensors.h"
#include "host/checkpoint.h"
#include "tests/tiny_model.h"

namespace qmc::testing {

inline host::Checkpoint RandomCheckpoint(uint32_t dim, uint32_t hidden, uint32_t seed) {
  host::Checkpoint c;
  c.format = "synthetic";
  c.config = {static_cast<uint32_t>(image::Arch::kLlama), dim, hidden, 1, 1, 1, 2, 8, 8, 10000.0f, 1e-5f,
              image::kModelSharedClassifier};
  c.detail = image::DefaultDetail(c.config);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::student_t_distribution<float> heavy(3.0f);  // occasional large weights, as trained matrices have
  for (const host::TensorSpec& spec : host::RequiredTensors(c.config, c.detail)) {
    host::Tensor t{spec.rows, spec.cols, std::vector<float>(static_cast<size_t>(spec.rows) * spec.cols)};
    for (float& w : t.data) w = spec.is_matrix ? 0.05f * heavy(rng) : 1.0f + normal(rng);
    c.tensors[spec.name] = std::move(t);
  }
  c.tokenizer = TinyTokenizer(c.config.vocab_size);
  return c;
}

}  // namespace qmc::testing
