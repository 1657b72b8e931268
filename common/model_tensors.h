// The tensors a model configuration requires, by canonical (GGUF-style) name
// and shape, in image order. The packer writes exactly these; the reader
// checks exactly these.
#pragma once

#include <cstdint>

#include "common/image_format.h"
#include "common/status.h"

namespace qmc::image {

struct TensorRequirement {
  char name[kTensorNameSize];
  uint32_t rows;
  uint32_t cols;
  bool is_matrix;  // a weight matrix (quantizable), not a norm or bias
};

uint32_t RequiredTensorCount(const ModelConfig& config);

// Fills `out` with requirement `index` (< RequiredTensorCount). The config
// must have passed ValidateModelConfig.
TensorRequirement RequiredTensor(const ModelConfig& config, uint32_t index);

Status ValidateModelConfig(const ModelConfig& config);

}  // namespace qmc::image
