// A small synthetic Llama checkpoint with a tokenizer, built in memory, for
// tests that must not depend on ../shared.
#pragma once

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/model_tensors.h"
#include "host/checkpoint.h"

namespace qmc::testing {

inline std::vector<uint8_t> TinyTokenizer(uint32_t vocab_size) {
  std::vector<uint8_t> out;
  auto put = [&out](const void* p, size_t n) {
    const size_t at = out.size();
    out.resize(at + n);  // not insert(): GCC 12 -O2 misreports it as an overflow
    std::memcpy(out.data() + at, p, n);
  };
  const int32_t max_length = 4;
  put(&max_length, 4);
  for (uint32_t i = 0; i < vocab_size; ++i) {
    const float score = -static_cast<float>(i);
    const std::string text = "t" + std::to_string(i % 100);
    const auto length = static_cast<int32_t>(text.size());
    put(&score, 4);
    put(&length, 4);
    put(text.data(), text.size());
  }
  return out;
}

// dim 40 and hidden 72 are not multiples of the usual group sizes on purpose.
inline host::Checkpoint TinyCheckpoint(uint32_t seed = 1, bool shared_classifier = false) {
  host::Checkpoint c;
  c.format = "synthetic";
  c.config = {static_cast<uint32_t>(image::Arch::kLlama), 40, 72, 2, 4, 2, 10, 37, 16, 10000.0f, 1e-5f,
              shared_classifier ? image::kModelSharedClassifier : 0u};
  c.detail = image::DefaultDetail(c.config);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (const host::TensorSpec& spec : host::RequiredTensors(c.config, c.detail)) {
    host::Tensor t{spec.rows, spec.cols, std::vector<float>(static_cast<size_t>(spec.rows) * spec.cols)};
    for (float& w : t.data) w = spec.is_matrix ? normal(rng) : 1.0f + normal(rng);
    // A few large weights, as real checkpoints have.
    if (spec.is_matrix) {
      for (int k = 0; k < 3; ++k) t.data[rng() % t.data.size()] = (k % 2 ? -1.0f : 1.0f) * (0.5f + 0.1f * k);
    }
    c.tensors[spec.name] = std::move(t);
  }
  c.tokenizer = TinyTokenizer(c.config.vocab_size);
  return c;
}

}  // namespace qmc::testing
