// Picks the next token from logits exactly as llama2.c run.c's sample():
// greedy argmax at temperature 0, else softmax(logits / temperature) and a
// multinomial draw, restricted to the top-p nucleus when 0 < topp < 1. The
// coin comes from run.c's xorshift* generator, so a seed reproduces a run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/status.h"

namespace qmc {

class Sampler {
 public:
  static size_t WorkspaceBytes(uint32_t vocab_size);

  // `seed` is the generator's state and must be non-zero (xorshift stays at
  // zero). `workspace` must outlive the sampler.
  Status Init(uint32_t vocab_size, float temperature, float topp, uint64_t seed, std::span<uint8_t> workspace);

  // `logits` holds vocab_size values.
  uint32_t Sample(const float* logits);

  // run.c's generator: xorshift* on a 64-bit state, the high 32 bits out.
  static uint32_t RandomU32(uint64_t& state);
  static float RandomF32(uint64_t& state);  // in [0, 1)

 private:
  struct ProbIndex {
    float prob;
    uint32_t index;
  };

  uint32_t Argmax(const float* values) const;
  uint32_t SampleMultinomial(float coin) const;
  uint32_t SampleTopP(float coin);

  uint32_t vocab_size_ = 0;
  float temperature_ = 0.0f;
  float topp_ = 0.0f;
  uint64_t state_ = 0;
  float* probs_ = nullptr;
  ProbIndex* candidates_ = nullptr;
};

}  // namespace qmc
