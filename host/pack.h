// Checkpoint in, image bytes out: validation, quantisation of every tensor,
// layout. Shared by `qmc pack` and the benchmarks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/checkpoint.h"
#include "host/quantize.h"

namespace qmc::host {

struct PackedModel {
  std::vector<uint8_t> image;
  std::vector<QuantizedTensor> tensors;  // with their reconstructions
};

// Called before each tensor is quantized.
using PackProgress = std::function<void(size_t index, size_t count, const TensorSpec& spec)>;

// Throws InputError for an invalid checkpoint, tokenizer or options.
PackedModel PackModel(const Checkpoint& checkpoint, const QuantOptions& options, const PackProgress& progress = {});

}  // namespace qmc::host
