// Softmax in place, as llama2.c computes it (max subtracted for stability):
// the engine's attention and the sampler share it, so both round alike.
#pragma once

#include <cmath>
#include <cstddef>

namespace qmc {

inline void Softmax(float* x, size_t n) {
  float max = x[0];
  for (size_t i = 1; i < n; ++i) {
    if (x[i] > max) max = x[i];
  }
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    x[i] = expf(x[i] - max);
    sum += x[i];
  }
  for (size_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace qmc
